// Package cortex is the Go SDK for Cortex Runtime plugins (ABI v1, docs/abi.md in the
// Cortex Runtime repository).
//
// A plugin is a Go main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// With this package imported, the plugin author writes only the capabilities. Each one is an
// exported function with the signature (uint32, uint32) uint32 that hands its arguments to one
// of the Handle helpers:
//
//	package main
//
//	import (
//		"errors"
//
//		"cortexruntime.dev/cortex"
//	)
//
//	type greetInput struct {
//		Name *string `json:"name"`
//	}
//
//	type greetOutput struct {
//		Greeting string `json:"greeting"`
//	}
//
//	//go:wasmexport greet
//	func greet(ptr, size uint32) uint32 {
//		return cortex.HandleJSON(ptr, size, func(in greetInput) (greetOutput, error) {
//			if in.Name == nil {
//				return greetOutput{}, errors.New(`missing required field "name"`)
//			}
//			return greetOutput{Greeting: "hello, " + *in.Name}, nil
//		})
//	}
//
//	func main() {} // required by the Go toolchain; never called in a reactor
//
// What the package does for the plugin:
//
//   - It exports the allocator cortex_alloc(size) -> ptr (manifest: "allocator": "custom" or
//     "auto"), through which the host writes each call's input into guest memory.
//   - It keeps every buffer it hands to the host (the input buffer and the result) reachable
//     from a package-level slice, so Go's garbage collector never frees memory the host still
//     reads. Nothing is ever freed explicitly: the host discards the whole instance after each
//     call (a fresh instance per call), so this is not a leak.
//   - It writes the result as ABI v1 requires: a 4-byte little-endian length followed by the
//     UTF-8 JSON bytes, and returns the pointer to the length.
//   - It reports errors through the host import cortex.error (the call then fails with
//     PluginError(message) on the host) and returns the null result pointer 0. A panic inside a
//     handler is recovered and reported the same way ("panic: ...").
//   - Log and Logf write lines through the host import cortex.log (they become plugin.log events).
//
// Initialisation: -buildmode=c-shared makes the Go linker emit a reactor that exports
// _initialize (and no _start). The host calls _initialize once per fresh instance; it runs the
// Go runtime's start-up and every package's init functions, so package-level variables and
// init() work as usual. func main is never called.
//
// Every call runs in a fresh instance: package variables and init functions start over, and
// goroutines (which work during a call) do not outlive it.
//
// Limits to keep in mind: a Go module is about 4.5 MB and its runtime grows the heap in 4 MiB
// steps, so give the plugin room in plugin.json ("wasm": {"maxMemoryPages": 512} is 32 MiB; a
// 1 MB input needs about 12 MiB). Go's wasm code costs roughly 20 fuel units per byte for a
// simple loop and about 100 per byte for encoding/json decoding; an Object input (ParseObject)
// halves the decoding cost. See docs/guides/go.md in the Cortex Runtime repository.
package cortex
