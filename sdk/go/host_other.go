//go:build !wasip1

package cortex

import (
	"fmt"
	"os"
	"unsafe"
)

// Outside WebAssembly (go test, go vet, editors) there is no host: errors are remembered in
// LastError and log lines go to standard error, so plugin logic can be unit-tested natively.

// LastError is the first message reported with Error since the last ResetError. It exists
// only in native (non-wasip1) builds, for tests.
var LastError *string

// ResetError forgets LastError (native builds only).
func ResetError() { LastError = nil }

func hostError(ptr unsafe.Pointer, size uint32) {
	if LastError == nil {
		msg := string(unsafe.Slice((*byte)(ptr), size))
		LastError = &msg
	}
}

func hostLog(level uint32, ptr unsafe.Pointer, size uint32) {
	fmt.Fprintf(os.Stderr, "plugin.log level=%d %s\n", level, unsafe.Slice((*byte)(ptr), size))
}
