// Command conformance-go is the Go conformance plugin of Cortex Runtime
// (conformance/README.md). It uses only the public surface of the Go SDK
// (cortexruntime.dev/cortex, sdk/go/) and is also an example of it:
//
//   - transform: typed JSON in and out (HandleJSON), with an Object input so that the keys
//     "text" and "mode" match exactly and their types are checked;
//   - echo: the raw-bytes path (Handle);
//   - fail: reporting an error by returning it;
//   - log: logging through the host (Log).
//
// Build: ./build.sh (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .).
package main

import (
	"errors"

	"cortexruntime.dev/cortex"
)

// transformOutput is written with its keys in this order: result, length, hash.
type transformOutput struct {
	Result string `json:"result"`
	Length int    `json:"length"` // UTF-8 bytes of Result
	Hash   uint64 `json:"hash"`   // simpleHash of Result's UTF-8 bytes
}

//go:wasmexport transform
func transform(ptr, size uint32) uint32 {
	return cortex.HandleJSON(ptr, size, func(in cortex.Object) (transformOutput, error) {
		text, err := in.String("text")
		if err != nil {
			return transformOutput{}, err
		}
		mode, err := in.String("mode")
		if err != nil {
			return transformOutput{}, err
		}
		b := []byte(text) // a copy: transformed in place
		switch mode {
		case "reverse":
			b = reverseRunes(b)
		case "uppercase":
			for i, c := range b {
				if 'a' <= c && c <= 'z' {
					b[i] = c - 'a' + 'A'
				}
			}
		case "lowercase":
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[i] = c - 'A' + 'a'
				}
			}
		case "rot13":
			for i, c := range b {
				switch {
				case 'a' <= c && c <= 'z':
					b[i] = 'a' + (c-'a'+13)%26
				case 'A' <= c && c <= 'Z':
					b[i] = 'A' + (c-'A'+13)%26
				}
			}
		default: // any other mode leaves the text unchanged
		}
		// Case mapping and rot13 change ASCII letters only (docs/decisions.md: identical results
		// in every guest language); bytes of multi-byte UTF-8 sequences are >= 0x80 and never
		// change, so the text stays valid UTF-8.
		return transformOutput{Result: string(b), Length: len(b), Hash: simpleHash(b)}, nil
	})
}

// reverseRunes reverses UTF-8 text by code point. The text is valid UTF-8 (Object.String
// only returns valid UTF-8), so a sequence's length follows from its lead byte.
func reverseRunes(s []byte) []byte {
	out := make([]byte, len(s))
	w := len(out)
	for i := 0; i < len(s); {
		n := 1
		switch c := s[i]; {
		case c < 0x80:
			w--
			out[w] = c
			i++
			continue
		case c < 0xE0:
			n = 2
		case c < 0xF0:
			n = 3
		default:
			n = 4
		}
		w -= n
		copy(out[w:w+n], s[i:i+n])
		i += n
	}
	return out
}

// simpleHash folds h = h*31 + byte over s, wrapping at 2^64, starting at 0.
func simpleHash(s []byte) uint64 {
	var h uint64
	for _, c := range s {
		h = h*31 + uint64(c)
	}
	return h
}

// echo returns its input bytes unchanged (any JSON value).
//
//go:wasmexport echo
func echo(ptr, size uint32) uint32 {
	return cortex.Handle(ptr, size, func(in []byte) ([]byte, error) { return in, nil })
}

// fail reports {"message": string} as the call's error.
//
//go:wasmexport fail
func fail(ptr, size uint32) uint32 {
	return cortex.HandleJSON(ptr, size, func(in cortex.Object) (struct{}, error) {
		msg, err := in.String("message")
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, errors.New(msg)
	})
}

type logOutput struct {
	Logged bool `json:"logged"`
}

// log writes {"message": string} to the host's log at level info and returns {"logged": true}.
//
//go:wasmexport log
func log(ptr, size uint32) uint32 {
	return cortex.HandleJSON(ptr, size, func(in cortex.Object) (logOutput, error) {
		msg, err := in.String("message")
		if err != nil {
			return logOutput{}, err
		}
		cortex.Log(cortex.LevelInfo, msg)
		return logOutput{Logged: true}, nil
	})
}

// main is required by the Go toolchain but never runs: -buildmode=c-shared builds a reactor
// whose _initialize only runs the package initialisers.
func main() {}
