package cortex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of skipped values (the host itself sends at most 1,024 levels).
const maxDepth = 10000

// SyntaxError is a malformed JSON input found by ParseObject.
type SyntaxError struct {
	Offset int    // byte offset of the problem in the input
	Reason string // e.g. "unterminated string"
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Reason)
}

// ParseObject parses data, which must hold exactly one JSON object (with optional surrounding
// whitespace), into an Object. Every member's value is validated (strict RFC 8259, UTF-8
// included) and kept as a sub-slice of data: no value is copied, so data must not be modified
// while the Object is in use. Keys are decoded (escapes resolved) and matched exactly.
//
// Anything but an object is an error: `input must be a JSON object, got an array` (null
// included). Malformed JSON is a *SyntaxError.
//
// HandleJSON uses ParseObject for an In of type Object; call it directly in a Handle
// capability that wants the raw input too.
func ParseObject(data []byte) (Object, error) {
	p := parser{buf: data}
	p.ws()
	if p.pos < len(p.buf) && p.buf[p.pos] != '{' {
		kind := Kind(p.buf[p.pos:])
		if err := p.value(); err != nil {
			return nil, err
		}
		if err := p.end(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("input must be a JSON object, got %s", kind)
	}
	if p.pos >= len(p.buf) {
		return nil, p.fail("empty input, expected a JSON object")
	}
	p.pos++ // '{'
	obj := Object{}
	p.ws()
	if p.peek() == '}' {
		p.pos++
		return obj, p.end()
	}
	for {
		p.ws()
		if p.peek() != '"' {
			return nil, p.fail("expected a string key")
		}
		start := p.pos
		if err := p.str(); err != nil {
			return nil, err
		}
		key, err := unquote(p.buf[start:p.pos])
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.peek() != ':' {
			return nil, p.fail("expected ':' after an object key")
		}
		p.pos++
		p.ws()
		start = p.pos
		if err := p.value(); err != nil {
			return nil, err
		}
		obj[key] = json.RawMessage(p.buf[start:p.pos:p.pos])
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
			continue
		case '}':
			p.pos++
			return obj, p.end()
		}
		return nil, p.fail("expected ',' or '}' in an object")
	}
}

type parser struct {
	buf []byte
	pos int
}

func (p *parser) fail(reason string) error { return &SyntaxError{Offset: p.pos, Reason: reason} }

// peek returns the next byte, or 0 at the end of the input (0 is never valid JSON there).
func (p *parser) peek() byte {
	if p.pos < len(p.buf) {
		return p.buf[p.pos]
	}
	return 0
}

func (p *parser) ws() {
	for p.pos < len(p.buf) {
		switch p.buf[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// end checks that only whitespace follows.
func (p *parser) end() error {
	p.ws()
	if p.pos != len(p.buf) {
		return p.fail("unexpected data after the JSON value")
	}
	return nil
}

// plain[c] is true for bytes that stand for themselves inside a JSON string: printable ASCII
// other than '"' and '\\'. (Bytes >= 0x80 are validated as UTF-8 separately.)
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// str validates the string starting at p.pos (a '"') and moves past its closing quote.
func (p *parser) str() error {
	b := p.buf
	i := p.pos + 1
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			p.pos = i
			return p.fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			p.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(b) {
				p.pos = i
				return p.fail("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok {
					p.pos = i
					return p.fail(`invalid \u escape`)
				}
				i += 6
				if r >= 0xD800 && r < 0xDC00 {
					lo, ok := rune(0), false
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						lo, ok = hex4(b, i+2)
					}
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						p.pos = i - 6
						return p.fail(`unpaired high surrogate in \u escape`)
					}
					i += 6
				} else if r >= 0xDC00 && r <= 0xDFFF {
					p.pos = i - 6
					return p.fail(`unpaired low surrogate in \u escape`)
				}
			default:
				p.pos = i
				return p.fail("invalid escape in string")
			}
		case c < 0x20:
			p.pos = i
			return p.fail("unescaped control character in string")
		default: // c >= 0x80
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				p.pos = i
				return p.fail("invalid UTF-8 in string")
			}
			i += n
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *parser) digits() int {
	start := p.pos
	for p.pos < len(p.buf) && '0' <= p.buf[p.pos] && p.buf[p.pos] <= '9' {
		p.pos++
	}
	return p.pos - start
}

func (p *parser) number() error {
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case '1' <= c && c <= '9':
		p.digits()
	default:
		return p.fail("invalid number")
	}
	if p.peek() == '.' {
		p.pos++
		if p.digits() == 0 {
			return p.fail("invalid number: expected a digit after '.'")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if p.digits() == 0 {
			return p.fail("invalid number: expected a digit in the exponent")
		}
	}
	return nil
}

func (p *parser) literal(lit string) error {
	if !bytes.HasPrefix(p.buf[p.pos:], []byte(lit)) {
		return p.fail("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

// value validates one JSON value starting at p.pos (no leading whitespace) and moves past it.
// Iterative: deep nesting cannot overflow the goroutine stack.
func (p *parser) value() error {
	var stack []byte // open containers: '{' or '['
	for {
		// A value is expected here.
		p.ws()
		switch c := p.peek(); {
		case c == '{' || c == '[':
			if len(stack) == maxDepth {
				return p.fail("nesting too deep")
			}
			p.pos++
			p.ws()
			if closing := c + 2; p.peek() == closing { // '{'+2 == '}', '['+2 == ']'
				p.pos++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if err := p.key(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if err := p.str(); err != nil {
				return err
			}
		case c == '-' || ('0' <= c && c <= '9'):
			if err := p.number(); err != nil {
				return err
			}
		case c == 't':
			if err := p.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := p.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := p.literal("null"); err != nil {
				return err
			}
		case p.pos >= len(p.buf):
			return p.fail("unexpected end of input, expected a value")
		default:
			return p.fail("unexpected character, expected a value")
		}
		// A value is complete: close containers or go on to the next member.
		for {
			if len(stack) == 0 {
				return nil
			}
			p.ws()
			top := stack[len(stack)-1]
			c := p.peek()
			if c == ',' {
				p.pos++
				if top == '{' {
					if err := p.key(); err != nil {
						return err
					}
				}
				break
			}
			if c == top+2 {
				p.pos++
				stack = stack[:len(stack)-1]
				continue
			}
			if top == '{' {
				return p.fail("expected ',' or '}' in an object")
			}
			return p.fail("expected ',' or ']' in an array")
		}
	}
}

// key validates `ws "key" ws :` inside an object.
func (p *parser) key() error {
	p.ws()
	if p.peek() != '"' {
		return p.fail("expected a string key")
	}
	if err := p.str(); err != nil {
		return err
	}
	p.ws()
	if p.peek() != ':' {
		return p.fail("expected ':' after an object key")
	}
	p.pos++
	return nil
}

// unquote decodes a JSON string literal (quotes included) that str has validated.
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", &SyntaxError{Reason: "not a JSON string"}
	}
	body := raw[1 : len(raw)-1]
	first := bytes.IndexByte(body, '\\')
	if first < 0 {
		return string(body), nil // no escapes: the common case, one copy
	}
	out := make([]byte, first, len(body))
	copy(out, body[:first])
	for i := first; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(body) {
			return "", &SyntaxError{Offset: i, Reason: "unterminated escape"}
		}
		switch e := body[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(body, i+2)
			if !ok {
				return "", &SyntaxError{Offset: i, Reason: `invalid \u escape`}
			}
			i += 6
			if r >= 0xD800 && r < 0xDC00 {
				lo, ok := rune(0), false
				if i+1 < len(body) && body[i] == '\\' && body[i+1] == 'u' {
					lo, ok = hex4(body, i+2)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return "", &SyntaxError{Offset: i - 6, Reason: `unpaired high surrogate in \u escape`}
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			} else if r >= 0xDC00 && r <= 0xDFFF {
				return "", &SyntaxError{Offset: i - 6, Reason: `unpaired low surrogate in \u escape`}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", &SyntaxError{Offset: i, Reason: "invalid escape in string"}
		}
		i += 2
	}
	return string(out), nil
}
