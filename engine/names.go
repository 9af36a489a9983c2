package engine

import (
	"crypto/rand"
	"encoding/binary"
)

// Words for the names of containers created without --name, as Docker
// gives them: adjective_noun. Harbour words, since berth is a harbour.
var (
	nameAdjectives = []string{
		"amber", "brave", "calm", "clever", "cosmic", "daring", "eager", "fierce",
		"gentle", "happy", "hardy", "humble", "jolly", "keen", "lively", "lucid",
		"mellow", "modest", "nimble", "noble", "patient", "plucky", "proud", "quiet",
		"rapid", "serene", "silent", "steady", "sturdy", "swift", "tidy", "vivid",
		"wandering", "wise", "witty", "zealous",
	}
	nameNouns = []string{
		"anchor", "barge", "beacon", "bollard", "buoy", "capstan", "cargo", "clipper",
		"compass", "cutter", "dinghy", "dock", "ferry", "galley", "harbour", "hawser",
		"helm", "hull", "jetty", "keel", "lantern", "lighthouse", "mast", "mooring",
		"oar", "pier", "pilot", "quay", "rudder", "schooner", "sextant", "skiff",
		"tide", "tugboat", "wharf", "yawl",
	}
)

// randomName draws a container name; callers retry on a clash.
func randomName() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	n := binary.BigEndian.Uint32(b[:])
	a := nameAdjectives[n%uint32(len(nameAdjectives))]
	w := nameNouns[(n/uint32(len(nameAdjectives)))%uint32(len(nameNouns))]
	return a + "_" + w
}
