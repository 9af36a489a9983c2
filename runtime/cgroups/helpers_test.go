package cgroups

import (
	"reflect"
	"strings"
	"testing"
)

// eq fails the test unless want and got are deeply equal.
func eq(t testing.TB, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("want %#v\n got %#v", want, got)
	}
}

// isTrue fails the test with the message unless ok.
func isTrue(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}

// mustNoErr stops the test on an error.
func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// errContains fails the test unless err is an error mentioning want.
func errContains(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("want an error containing %q, got %v", want, err)
	}
}

// mustErrContains is errContains that stops the test.
func mustErrContains(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want an error containing %q, got %v", want, err)
	}
}

// mustLen stops the test unless s has n elements.
func mustLen[T any](t testing.TB, s []T, n int) {
	t.Helper()
	if len(s) != n {
		t.Fatalf("want %d elements, got %d: %v", n, len(s), s)
	}
}
