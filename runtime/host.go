package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkHost refuses, before anything is made, what this host or berth
// cannot do for the configuration.
func checkHost(s *specs.Spec) error {
	if s.Linux == nil {
		return errors.New("config.json: a linux section is required")
	}
	if !hasNS(s, specs.MountNamespace) {
		return errors.New("config.json: a mount namespace is required (berth never changes the host's mounts)")
	}
	if (s.Hostname != "" || s.Domainname != "") && !hasNS(s, specs.UTSNamespace) {
		return errNoUTS
	}
	for _, ns := range s.Linux.Namespaces {
		if _, err := os.Stat("/proc/self/ns/" + nsProcName(ns.Type)); err != nil {
			return fmt.Errorf("this kernel has no %s namespaces", ns.Type)
		}
	}
	if len(s.Linux.TimeOffsets) > 0 && !hasNS(s, specs.TimeNamespace) {
		return errors.New("config.json: timeOffsets need a time namespace")
	}
	for k := range s.Linux.Sysctl {
		if err := checkSysctl(s, k); err != nil {
			return err
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Only values decoded from JSON reach here.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return data
}
