package cortex

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Run natively: go test ./ (in sdk/go). The host imports are replaced by host_other.go.

func TestParseObjectMatchesEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, ` { } `, `{"a":1}`, `{"text":"hi","mode":"reverse"}`,
		`{"a":{"b":[1,2,{"c":null}]},"d":-1.5e3,"e":true,"f":false,"g":""}`,
		`{"k":"\u00e9\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t\u0000"}`,
		`{"a":1,"a":2}`, "{\n\t\"x\" :\r [ ] }", `{"\u0041":"key escape"}`,
		`{"n":[0,-0,1e5,1E+5,1e-5,0.5,-12.75,123456789012345678901234567890]}`,
		`{"deep":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
		`{"u":"日本語 😀 é"}`,
	}
	for _, doc := range docs {
		got, err := ParseObject([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", doc, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d keys, want %d", doc, len(got), len(want))
		}
		for k, raw := range got {
			var g any
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Errorf("%s: member %q = %s: %v", doc, k, raw, err)
			}
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(want[k])
			if string(gj) != string(wj) {
				t.Errorf("%s: member %q = %s, want %s", doc, k, gj, wj)
			}
			if Kind(raw) == "a string" {
				s, err := got.String(k)
				if err != nil || s != want[k] {
					t.Errorf("%s: String(%q) = %q, %v; want %q", doc, k, s, err, want[k])
				}
			}
		}
	}
}

func TestParseObjectRejects(t *testing.T) {
	bad := map[string]string{
		``:                         "empty input",
		`   `:                      "empty input",
		`[]`:                       "input must be a JSON object, got an array",
		`null`:                     "input must be a JSON object, got null",
		`"s"`:                      "input must be a JSON object, got a string",
		`12`:                       "input must be a JSON object, got a number",
		`true`:                     "input must be a JSON object, got a boolean",
		`{`:                        "expected a string key",
		`{"a"}`:                    "expected ':'",
		`{"a":}`:                   "expected a value",
		`{"a":1,}`:                 "expected a string key",
		`{"a":1 "b":2}`:            "expected ',' or '}'",
		`{"a":[1,]}`:               "expected a value",
		`{"a":[1 2]}`:              "expected ',' or ']'",
		`{"a":01}`:                 "expected ',' or '}'",
		`{"a":1.}`:                 "digit after '.'",
		`{"a":1e}`:                 "exponent",
		`{"a":-}`:                  "invalid number",
		`{"a":tru}`:                "invalid literal",
		`{"a":"x}`:                 "unterminated string",
		`{"a":"\x"}`:               "invalid escape",
		`{"a":"\u12"}`:             `invalid \u escape`,
		`{"a":"\ud800"}`:           "unpaired high surrogate",
		`{"a":"\ud800\u0041"}`:     "unpaired high surrogate",
		`{"a":"\udc00"}`:           "unpaired low surrogate",
		"{\"a\":\"\x01\"}":         "control character",
		"{\"a\":\"\xff\"}":         "invalid UTF-8",
		"{\"a\":\"\xed\xa0\x80\"}": "invalid UTF-8",
		`{"a":1} x`:                "unexpected data",
		`{} {}`:                    "unexpected data",
		`{"a":{"b":1]}`:            "expected ',' or '}'",
	}
	for doc, want := range bad {
		_, err := ParseObject([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseObject(%q) = %v, want an error containing %q", doc, err, want)
		}
	}
	if _, err := ParseObject([]byte(`{"d":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`)); err == nil {
		t.Error("nesting deeper than maxDepth accepted")
	}
}

func TestObjectHelpers(t *testing.T) {
	o, err := ParseObject([]byte(`{"s":"x","n":5,"z":null,"o":{"Q":1},"S":"upper"}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ key, want, err string }{
		{"s", "x", ""},
		{"n", "", `field "n" must be a string, got a number`},
		{"z", "", `field "z" must be a string, got null`},
		{"o", "", `field "o" must be a string, got an object`},
		{"missing", "", `missing required field "missing" (a string)`},
		{"S", "upper", ""},
	}
	for _, c := range cases {
		got, err := o.String(c.key)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("String(%q) = %q, %v; want %q, %q", c.key, got, err, c.want, c.err)
		}
	}
	var inner struct{ Q int }
	if err := o.Decode("o", &inner); err != nil || inner.Q != 1 {
		t.Errorf("Decode: %v %+v", err, inner)
	}
	if !o.Has("z") || o.Has("missing") {
		t.Error("Has")
	}
	// Nested in a struct decoded by encoding/json.
	var wrapper struct{ Inner Object }
	if err := json.Unmarshal([]byte(`{"Inner":{"k":"v"}}`), &wrapper); err != nil {
		t.Fatal(err)
	}
	if s, _ := wrapper.Inner.String("k"); s != "v" {
		t.Errorf("nested Object: %q", s)
	}
}

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"\u00e9"}]}`, `{"a":"\ud83d\ude00"}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := ParseObject(data)
		valid := json.Valid(data) && utf8.Valid(data)
		isObject := valid && Kind(data) == "an object"
		if err == nil && !isObject {
			t.Fatalf("accepted %q", data)
		}
		if err != nil && isObject && !strings.Contains(string(data), `\u`) {
			// encoding/json accepts lone surrogate escapes; we refuse them, as the host does.
			t.Fatalf("rejected valid %q: %v", data, err)
		}
		for k := range obj {
			if !utf8.ValidString(k) {
				t.Fatalf("invalid key %q", k)
			}
		}
	})
}
