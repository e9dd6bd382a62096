// Command {{name}} is a Cortex Runtime plugin written in Go.
//
// Build: ./build.sh (needs CORTEX_SDK_DIR; see README.md). Each capability is an exported
// function (ptr, size uint32) uint32 that hands its input to the SDK; the SDK decodes the
// JSON input, encodes the result and reports errors to the host.
package main

import (
	"errors"

	"cortexruntime.dev/cortex"
)

type greetInput struct {
	Name *string `json:"name"` // a pointer, so that a missing "name" is nil rather than ""
}

type greetOutput struct {
	Greeting string `json:"greeting"`
}

// greet: {"name": "Ada"} -> {"greeting": "hello, Ada"}.
//
//go:wasmexport greet
func greet(ptr, size uint32) uint32 {
	return cortex.HandleJSON(ptr, size, func(in greetInput) (greetOutput, error) {
		if in.Name == nil {
			// Returning an error fails the call: the caller gets PluginError with this message.
			return greetOutput{}, errors.New(`missing required field "name" (a string)`)
		}
		cortex.Logf(cortex.LevelDebug, "greeting %d bytes of name", len(*in.Name))
		return greetOutput{Greeting: "hello, " + *in.Name}, nil
	})
}

// main is required by the Go toolchain but never runs: the plugin is built as a reactor
// (-buildmode=c-shared) whose _initialize, called by the host, only runs package initialisers.
func main() {}
