package cortex

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Handle runs a capability that works on raw bytes: f gets the input JSON exactly as the
// caller sent it (it may modify the slice in place) and returns the result JSON, which must be
// valid UTF-8 JSON (the host refuses anything else with InvalidOutput). A non-nil error fails
// the call with PluginError(err.Error()). A panic in f is recovered and reported the same way,
// as "panic: <value>".
//
//	//go:wasmexport echo
//	func echo(ptr, size uint32) uint32 {
//		return cortex.Handle(ptr, size, func(in []byte) ([]byte, error) { return in, nil })
//	}
func Handle(ptr, size uint32, f func(input []byte) ([]byte, error)) (result uint32) {
	defer recoverPanic(&result)
	out, err := f(Input(ptr, size))
	if err != nil {
		return Fail(err)
	}
	return Return(out)
}

// HandleJSON runs a capability with typed input and output: the input JSON is decoded into an
// In with encoding/json, f is called, and its Out is encoded as the result. Errors and panics
// are reported as by Handle; input that does not decode into In fails the call with
// "invalid input: <encoding/json's message>".
//
// With In = Object the input is parsed by ParseObject instead (exact keys, type checks, much
// faster for large inputs). Otherwise encoding/json's rules apply, in particular for struct
// inputs:
//   - unknown keys are ignored, and a missing key leaves its field at the zero value: use a
//     pointer field (*string) to tell "missing" (nil) from "empty";
//   - a JSON null also leaves the field unchanged (nil for a pointer);
//   - keys are matched to struct fields case-insensitively ("Name" and "NAME" fill the field
//     tagged "name"); when that matters, decode into Object, whose keys match exactly.
//
// The result is encoded like json.Marshal except that <, > and & are not escaped. Struct
// fields are written in declaration order; uint64 values are written exactly.
func HandleJSON[In, Out any](ptr, size uint32, f func(In) (Out, error)) (result uint32) {
	defer recoverPanic(&result)
	var in In
	if obj, ok := any(&in).(*Object); ok {
		// The SDK's own parser: one pass, strict, values alias the input (see Object).
		parsed, err := ParseObject(Input(ptr, size))
		if err != nil {
			return Fail(err)
		}
		*obj = parsed
	} else if err := json.Unmarshal(Input(ptr, size), &in); err != nil {
		return Fail(fmt.Errorf("invalid input: %w", err))
	}
	out, err := f(in)
	if err != nil {
		return Fail(err)
	}
	return ReturnJSON(out)
}

// ReturnJSON encodes v as JSON (as HandleJSON does) and returns it as the call's result, or
// reports the encoding error and returns 0.
func ReturnJSON(v any) uint32 {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0, 0}) // room for the length header: no copy of the encoded JSON
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Fail(fmt.Errorf("cannot encode the result as JSON: %w", err))
	}
	buf := b.Bytes()
	return finish(buf[:len(buf)-1]) // without the newline Encode appends
}

// recoverPanic turns a panic in a handler into a reported error and a 0 result. (Fatal runtime
// errors such as running out of memory cannot be recovered: the call traps.)
func recoverPanic(result *uint32) {
	if r := recover(); r != nil {
		Error(fmt.Sprint("panic: ", r))
		*result = 0
	}
}
