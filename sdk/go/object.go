package cortex

import (
	"encoding/json"
	"fmt"
)

// Object is a JSON object decoded one level deep: each member's value is kept as raw JSON,
// to be decoded on demand with String or Decode.
//
// Use Object as HandleJSON's input type when
//   - keys must match exactly (encoding/json matches struct fields case-insensitively:
//     "Text" would fill a field tagged "text"),
//   - a member's JSON type must be checked ("text" must be a string, not null),
//   - inputs are large: HandleJSON parses an Object with the SDK's own single-pass parser
//     (ParseObject), several times faster under wasm than encoding/json, and the values
//     alias the input buffer instead of being copied.
//
// Of duplicated keys the last wins, as in most JSON parsers (and Python's).
type Object map[string]json.RawMessage

// Has reports whether the object has the key (with any value, null included).
func (o Object) Has(key string) bool {
	_, ok := o[key]
	return ok
}

// String returns the member key, which must be a JSON string. The errors read
// `missing required field "key" (a string)` and `field "key" must be a string, got a number`.
func (o Object) String(key string) (string, error) {
	raw, ok := o[key]
	if !ok {
		return "", fmt.Errorf("missing required field %q (a string)", key)
	}
	if kind := Kind(raw); kind != "a string" {
		return "", fmt.Errorf("field %q must be a string, got %s", key, kind)
	}
	s, err := unquote(raw)
	if err != nil {
		return "", fmt.Errorf("field %q: %w", key, err)
	}
	return s, nil
}

// Decode decodes the member key into v with encoding/json. A missing key is an error
// (`missing required field "key"`); a null value leaves v unchanged, as in encoding/json.
func (o Object) Decode(key string, v any) error {
	raw, ok := o[key]
	if !ok {
		return fmt.Errorf("missing required field %q", key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("field %q: %w", key, err)
	}
	return nil
}

// UnmarshalJSON lets encoding/json decode an Object nested in other types with the same rules
// as ParseObject (JSON null leaves the Object unchanged, as encoding/json does for maps).
func (o *Object) UnmarshalJSON(data []byte) error {
	if Kind(data) == "null" {
		return nil
	}
	parsed, err := ParseObject(append([]byte(nil), data...)) // data must not be retained
	if err != nil {
		return err
	}
	*o = parsed
	return nil
}

// Kind names the type of a raw JSON value for error messages: "an object", "an array",
// "a string", "a number", "a boolean" or "null" (leading whitespace is skipped; "nothing" for
// empty input).
func Kind(raw []byte) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return "an object"
		case '[':
			return "an array"
		case '"':
			return "a string"
		case 't', 'f':
			return "a boolean"
		case 'n':
			return "null"
		default:
			return "a number"
		}
	}
	return "nothing"
}
