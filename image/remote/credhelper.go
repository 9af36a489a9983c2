package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Docker's credential helper protocol: the program
// docker-credential-<name> is run with the action as its argument, the
// input on stdin and the answer (or the error message) on stdout.
const (
	helperPrefix = "docker-credential-"
	// tokenUsername, as the user name, marks the secret as an identity
	// token.
	tokenUsername = "<token>"
	// helperNotFound is what helpers print when they hold nothing for a
	// server.
	helperNotFound = "credentials not found"
)

// helperCredential is the JSON helpers read and write.
type helperCredential struct {
	ServerURL string `json:"ServerURL,omitempty"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// helperGet asks helper for serverAddress's credential; the empty one
// when it has none.
func helperGet(ctx context.Context, helper, serverAddress string) (credential, error) {
	out, err := runHelper(ctx, helper, "get", []byte(serverAddress))
	if err != nil {
		if strings.Contains(err.Error(), helperNotFound) {
			return credential{}, nil
		}
		return credential{}, err
	}
	var hc helperCredential
	if err := json.Unmarshal(out, &hc); err != nil {
		return credential{}, fmt.Errorf("%s%s get: decode answer: %w", helperPrefix, helper, err)
	}
	if hc.Username == tokenUsername {
		return credential{IdentityToken: hc.Secret}, nil
	}
	return credential{Username: hc.Username, Password: hc.Secret}, nil
}

// helperStore gives helper serverAddress's credential to keep.
func helperStore(ctx context.Context, helper, serverAddress string, c credential) error {
	hc := helperCredential{ServerURL: serverAddress, Username: c.Username, Secret: c.Password}
	if c.IdentityToken != "" {
		hc.Username, hc.Secret = tokenUsername, c.IdentityToken
	}
	in, err := json.Marshal(hc)
	if err != nil {
		return err
	}
	_, err = runHelper(ctx, helper, "store", in)
	return err
}

// helperErase makes helper forget serverAddress.
func helperErase(ctx context.Context, helper, serverAddress string) error {
	_, err := runHelper(ctx, helper, "erase", []byte(serverAddress))
	return err
}

// runHelper runs one helper action and returns its stdout. On failure the
// error carries what the helper printed, since that is where helpers put
// their messages.
func runHelper(ctx context.Context, helper, action string, input []byte) ([]byte, error) {
	if helper == "" || strings.ContainsAny(helper, `/\`) {
		return nil, fmt.Errorf("invalid credential helper name %q", helper)
	}
	name := helperPrefix + helper
	cmd := exec.CommandContext(ctx, name, action)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		msg := strings.TrimSpace(stdout.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if len(msg) > 512 {
			msg = msg[:512]
		}
		if msg != "" {
			return nil, fmt.Errorf("%s %s: %s", name, action, msg)
		}
	}
	return nil, fmt.Errorf("%s %s: %w", name, action, err)
}
