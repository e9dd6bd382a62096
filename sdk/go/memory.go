package cortex

import (
	"encoding/binary"
	"unsafe"
)

// pinned holds every buffer whose address has been handed to the host. Go's garbage collector
// does not move objects, but it frees unreachable ones: a buffer the host writes into (the
// input) or reads from (the result) must therefore stay reachable until the instance ends.
// The host discards the instance after each call, so the slice never needs to shrink.
var pinned [][]byte

func pin(b []byte) uint32 {
	pinned = append(pinned, b)
	return addr(b)
}

// addr is the linear-memory offset of b's first byte (wasm32: pointers are 32-bit offsets).
func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// cortexAlloc is the allocator the host calls (once per call, before the capability) to get
// size bytes for the input JSON. It is exported as cortex_alloc (ABI v1, allocator "custom").
//
//go:wasmexport cortex_alloc
func cortexAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	return pin(make([]byte, size))
}

// Input returns the size bytes at ptr: the input JSON the host wrote for this call. The slice
// aliases guest memory that the SDK keeps alive; it may be modified in place.
//
// Capabilities normally do not call Input directly: Handle and HandleJSON do.
func Input(ptr, size uint32) []byte {
	if size == 0 {
		return []byte{}
	}
	// The host got ptr from cortex_alloc: find that buffer, so the slice is an ordinary Go
	// slice of a live allocation.
	for i := len(pinned) - 1; i >= 0; i-- {
		b := pinned[i]
		if addr(b) == ptr && uint32(len(b)) >= size {
			return b[:size:size]
		}
	}
	// Memory the SDK did not allocate (e.g. a host that wrote into static memory): view it
	// directly. Valid because wasm linear memory never moves.
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), ptr)), size)
}

// Return hands out (UTF-8 JSON) to the host as the result of the current call and returns the
// result pointer the capability must return: out is copied behind a 4-byte little-endian
// length header into a buffer that stays alive until the instance ends. The host checks that
// out is valid UTF-8 JSON (else the call fails with InvalidOutput).
//
// Capabilities normally do not call Return directly: Handle and HandleJSON do.
func Return(out []byte) uint32 {
	buf := make([]byte, 4+len(out))
	copy(buf[4:], out)
	return finish(buf)
}

// finish writes the length header into buf[0:4] and pins buf.
func finish(buf []byte) uint32 {
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-4))
	return pin(buf)
}
