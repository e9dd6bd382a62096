//go:build wasip1

package cortex

import "unsafe"

// The two functions of the host's "cortex" import module (docs/abi.md). Both take a pointer
// to UTF-8 bytes in linear memory and their length; the host copies the bytes during the call.

//go:wasmimport cortex error
//go:noescape
func hostError(ptr unsafe.Pointer, size uint32)

//go:wasmimport cortex log
//go:noescape
func hostLog(level uint32, ptr unsafe.Pointer, size uint32)
