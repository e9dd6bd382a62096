  ;; ==========================================================================================
  ;; Cortex WAT SDK, plugin ABI v1 (docs/abi.md)                              sdk/wat/cortex.wat
  ;;
  ;; This file is not a module: it is a list of module fields. A plugin's `plugin.wat` is
  ;;
  ;;     (module
  ;;       ;; @include cortex.wat
  ;;       ...your data and capability functions...
  ;;     )
  ;;
  ;; and its build.sh replaces the `;; @include cortex.wat` line with this file before compiling
  ;; (WAT has no include directive of its own). You may also paste this file there by hand.
  ;; It must come first inside `(module`: the text format wants imports before definitions.
  ;;
  ;; What it gives you (everything prefixed `$cortex_`; `$cortex__*` names are internal):
  ;;
  ;;   exports    "memory" (1 page initially, grown on demand) and "cortex_alloc" (the allocator
  ;;              the host uses for the input; manifest "allocator": "custom" or "auto")
  ;;   input      $cortex_get_string (in, in_len, key, key_len) -> (ptr, len)
  ;;              $cortex_field      (in, in_len, key, key_len) -> (ptr, len)   raw JSON value
  ;;              $cortex_decode_string (raw, raw_len) -> (ptr, len)
  ;;   output     $cortex_out_begin, $cortex_out_raw, $cortex_out_byte, $cortex_out_string,
  ;;              $cortex_out_escaped, $cortex_out_u64, $cortex_out_i64, $cortex_out_end -> result
  ;;              $cortex_result_raw (ptr, len) -> result      (a whole JSON text, e.g. echo)
  ;;   errors     $cortex_error (ptr, len) -> 0                (so: `return (call $cortex_error ..)`)
  ;;   logging    $cortex_log (level, ptr, len); levels $CORTEX_LOG_DEBUG/INFO/WARN/ERROR
  ;;   messages   $cortex_msg_begin, $cortex_msg_add, $cortex_msg_add_u64, $cortex_msg_error,
  ;;              $cortex_msg_log                              (compose an error or log line)
  ;;   helpers    $cortex_eq (a, a_len, b, b_len) -> 0/1, $cortex_fmt_u64 (v) -> (ptr, len),
  ;;              $cortex_alloc (size) -> ptr (0 when memory is exhausted)
  ;;
  ;; Conventions
  ;; - Every SDK function that can fail has already reported the failure through cortex.error
  ;;   when it returns a 0 pointer. The capability then just returns 0:
  ;;       (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4096) (i32.const 4))
  ;;       (local.set $name_len) (local.set $name)
  ;;       (if (i32.eqz (local.get $name)) (then (return (i32.const 0))))
  ;; - Strings are (ptr, len) pairs of UTF-8 bytes, never NUL-terminated. Multi-value returns push
  ;;   ptr first, so `local.set` the len first.
  ;; - There is no free: every call runs in a fresh instance that is thrown away afterwards, and
  ;;   the bump allocator simply moves forward (ABI v1, "Fresh instance per call").
  ;; - No `_initialize` is exported: nothing needs initialising (data segments and global
  ;;   initialisers are applied by instantiation, and every call gets a new instance).
  ;;
  ;; Memory map (all in the first 64 KiB page, which the module declares):
  ;;        0 ..  1023   unused (address 0 is the null result)
  ;;     1024 ..  1279   table: bytes of the JSON escape of each byte (1, 2 or 6)
  ;;     1280 ..  1295   "0123456789abcdef"
  ;;     1296 ..  1391   table: letter of the short escape of a byte (\b \t \n \f \r \" \\), or 0
  ;;     1392 ..  1423   scratch for $cortex_fmt_u64
  ;;     1424 ..  1551   bit stack of open containers while skipping nested JSON (1024 levels)
  ;;     2048 ..  3071   message buffer of $cortex_msg_* (1 KiB; longer messages are truncated)
  ;;     3072 ..  4095   the SDK's own strings (length-prefixed)
  ;;     4096 .. 65535   YOURS: put your plugin's data segments (keys, JSON fragments) here
  ;;    65536 ..         heap ($cortex_alloc), grown with memory.grow up to the manifest's
  ;;                     wasm.maxMemoryPages
  ;; ==========================================================================================

  ;; ---- host imports (ABI v1 "The cortex host module") ---------------------------------------
  (import "cortex" "error" (func $cortex__host_error (param i32 i32)))
  (import "cortex" "log" (func $cortex__host_log (param i32 i32 i32)))

  ;; ---- the one linear memory, exported as "memory" ------------------------------------------
  ;; No maximum here: the manifest's wasm.maxMemoryPages is the limit (a module maximum would
  ;; also cap the manifest's memoryPages).
  (memory (export "memory") 1)

  ;; Log levels for $cortex_log / $cortex_msg_log.
  (global $CORTEX_LOG_DEBUG i32 (i32.const 0))
  (global $CORTEX_LOG_INFO i32 (i32.const 1))
  (global $CORTEX_LOG_WARN i32 (i32.const 2))
  (global $CORTEX_LOG_ERROR i32 (i32.const 3))

  ;; ---- static data ----------------------------------------------------------------------------
  ;; 1024: escaped length of each byte in a JSON string: 1 = copied (ASCII >= 0x20 and every UTF-8
  ;; byte >= 0x80), 2 = short escape (\b \t \n \f \r \" \\), 6 = \u00XX.
  (data (i32.const 1024)
    "\06\06\06\06\06\06\06\06\02\02\02\06\02\02\06\06\06\06\06\06\06\06\06\06\06\06\06\06\06\06\06\06"
    "\01\01\02\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\02\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01"
    "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01")
  ;; 1280: hex digits.
  (data (i32.const 1280) "0123456789abcdef")
  ;; 1296: the letter after '\' for bytes with a short escape (indexes 0x00 .. 0x5f).
  (data (i32.const 1296)
    "\00\00\00\00\00\00\00\00\62\74\6e\00\66\72\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\22\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\5c\00\00\00")

  (global $cortex__DEC i32 (i32.const 1392))
  (global $cortex__NEST i32 (i32.const 1424))
  (global $cortex__MSG i32 (i32.const 2048))
  (global $cortex__MSG_CAP i32 (i32.const 1024))

  ;; 3072: the SDK's messages, each a length byte followed by the bytes.
  (global $cortex__R_EXPECT_QUOTE i32 (i32.const 3072))
  (global $cortex__R_UNTERMINATED i32 (i32.const 3085))
  (global $cortex__R_TRUNC_U i32 (i32.const 3105))
  (global $cortex__R_BAD_HEX i32 (i32.const 3125))
  (global $cortex__R_UNPAIRED_HIGH i32 (i32.const 3156))
  (global $cortex__R_UNPAIRED_LOW i32 (i32.const 3193))
  (global $cortex__R_BAD_ESCAPE i32 (i32.const 3229))
  (global $cortex__R_CONTROL i32 (i32.const 3254))
  (global $cortex__R_BAD_UTF8 i32 (i32.const 3292))
  (global $cortex__R_BAD_NUMBER i32 (i32.const 3316))
  (global $cortex__R_BAD_LITERAL i32 (i32.const 3331))
  (global $cortex__R_EXPECT_KEY i32 (i32.const 3347))
  (global $cortex__R_EXPECT_COLON i32 (i32.const 3367))
  (global $cortex__R_TOO_DEEP i32 (i32.const 3397))
  (global $cortex__R_EOF_VALUE i32 (i32.const 3429))
  (global $cortex__R_BAD_VALUE i32 (i32.const 3471))
  (global $cortex__R_EXPECT_OBJ i32 (i32.const 3510))
  (global $cortex__R_EXPECT_ARR i32 (i32.const 3540))
  (global $cortex__R_EMPTY i32 (i32.const 3569))
  (global $cortex__R_TRAILING i32 (i32.const 3581))
  (global $cortex__S_INVALID_AT i32 (i32.const 3612))
  (global $cortex__S_COLON i32 (i32.const 3640))
  (global $cortex__S_NOT_OBJECT i32 (i32.const 3643))
  (global $cortex__S_MISSING i32 (i32.const 3677))
  (global $cortex__S_A_STRING i32 (i32.const 3702))
  (global $cortex__S_FIELD i32 (i32.const 3715))
  (global $cortex__S_MUST_STRING i32 (i32.const 3723))
  (global $cortex__T_OBJECT i32 (i32.const 3748))
  (global $cortex__T_ARRAY i32 (i32.const 3758))
  (global $cortex__T_STRING i32 (i32.const 3767))
  (global $cortex__T_BOOLEAN i32 (i32.const 3776))
  (global $cortex__T_NULL i32 (i32.const 3786))
  (global $cortex__T_NUMBER i32 (i32.const 3791))
  (global $cortex__L_TRUE i32 (i32.const 3800))
  (global $cortex__L_FALSE i32 (i32.const 3805))
  (global $cortex__S_OOM i32 (i32.const 3811))
  (global $cortex__S_OOM_RESULT i32 (i32.const 3825))
  (global $cortex__S_NO_RESULT i32 (i32.const 3865))
  (global $cortex__S_INTERLEAVED i32 (i32.const 3912))
  (data (i32.const 3072)
    "\0c" "expected '\"'"
    "\13" "unterminated string"
    "\13" "truncated \\u escape"
    "\1e" "invalid hex digit in \\u escape"
    "\24" "unpaired high surrogate in \\u escape"
    "\23" "unpaired low surrogate in \\u escape"
    "\18" "invalid escape in string"
    "\25" "unescaped control character in string"
    "\17" "invalid UTF-8 in string"
    "\0e" "invalid number"
    "\0f" "invalid literal"
    "\13" "expected string key"
    "\1d" "expected ':' after object key"
    "\1f" "nesting deeper than 1024 levels"
    "\29" "unexpected end of input, expected a value"
    "\26" "unexpected character, expected a value"
    "\1d" "expected ',' or '}' in object"
    "\1c" "expected ',' or ']' in array"
    "\0b" "empty input"
    "\1e" "unexpected trailing characters"
    "\1b" "invalid JSON input at byte "
    "\02" ": "
    "\21" "input must be a JSON object, got "
    "\18" "missing required field \""
    "\0c" "\" (a string)"
    "\07" "field \""
    "\18" "\" must be a string, got "
    "\09" "an object"
    "\08" "an array"
    "\08" "a string"
    "\09" "a boolean"
    "\04" "null"
    "\08" "a number"
    "\04" "true"
    "\05" "false"
    "\0d" "out of memory"
    "\27" "out of memory while building the result"
    "\2e" "cortex_out_end called without cortex_out_begin"
    "\36" "cortex_alloc was called while a result was being built")

  ;; ==========================================================================================
  ;; Allocator
  ;; ==========================================================================================

  ;; First free heap byte. Everything below 64 KiB is static data (see the memory map).
  (global $cortex__heap_top (mut i32) (i32.const 65536))

  ;; Makes memory at least `end` bytes long (end is unsigned, may exceed 2^32). 1 on success, 0 if
  ;; memory.grow refuses (the manifest's wasm.maxMemoryPages is reached).
  (func $cortex__ensure (param $end i64) (result i32)
    (local $have i64)
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.le_u (local.get $end) (local.get $have)) (then (return (i32.const 1))))
    (if (i64.ge_u (local.get $end) (i64.const 0x100000000)) (then (return (i32.const 0))))
    (i32.ne
      (memory.grow
        (i32.wrap_i64
          (i64.shr_u (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 0xffff))
                     (i64.const 16))))
      (i32.const -1)))

  ;; cortex_alloc(size) -> ptr: an 8-byte aligned block of `size` bytes, or 0 when memory cannot
  ;; grow. The host calls it once per call for the input (ABI v1 "Allocator"); plugins may call it
  ;; too (but not between $cortex_out_begin and $cortex_out_end). Nothing is ever freed.
  (func $cortex_alloc (export "cortex_alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i64)
    (local.set $ptr (i32.and (i32.add (global.get $cortex__heap_top) (i32.const 7)) (i32.const -8)))
    (if (i32.lt_u (local.get $ptr) (global.get $cortex__heap_top)) (then (return (i32.const 0))))
    (local.set $end (i64.add (i64.extend_i32_u (local.get $ptr)) (i64.extend_i32_u (local.get $size))))
    (if (i32.eqz (call $cortex__ensure (local.get $end))) (then (return (i32.const 0))))
    (global.set $cortex__heap_top (i32.wrap_i64 (local.get $end)))
    (local.get $ptr))

  ;; ==========================================================================================
  ;; Errors, logs, messages
  ;; ==========================================================================================

  ;; Reports `msg` as the call's error (the caller gets PluginError(msg)) and returns 0, the null
  ;; result: `(return (call $cortex_error (i32.const MSG) (i32.const LEN)))`. Only the first error
  ;; of a call counts; messages are truncated to 4 KiB by the host.
  (func $cortex_error (param $ptr i32) (param $len i32) (result i32)
    (call $cortex__host_error (local.get $ptr) (local.get $len))
    (i32.const 0))

  ;; Logs one line (a structlog `plugin.log` event). Levels: 0 debug, 1 info, 2 warning, 3 error.
  (func $cortex_log (param $level i32) (param $ptr i32) (param $len i32)
    (call $cortex__host_log (local.get $level) (local.get $ptr) (local.get $len)))

  ;; 1 if the byte strings a and b are equal.
  (func $cortex_eq (param $a i32) (param $a_len i32) (param $b i32) (param $b_len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $a_len) (local.get $b_len)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $a_len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; The unsigned decimal digits of v, in a scratch buffer valid until the next call.
  (func $cortex_fmt_u64 (param $v i64) (result i32 i32)
    (local $p i32) (local $end i32)
    (local.set $end (i32.add (global.get $cortex__DEC) (i32.const 24)))
    (local.set $p (local.get $end))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.rem_u (local.get $v) (i64.const 10)) (i64.const 48)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (local.get $p)
    (i32.sub (local.get $end) (local.get $p)))

  ;; A message buffer for composing error and log lines:
  ;;   (call $cortex_msg_begin)
  ;;   (call $cortex_msg_add (i32.const MSG) (i32.const LEN))
  ;;   (call $cortex_msg_add_u64 (i64.extend_i32_u (local.get $n)))
  ;;   (return (call $cortex_msg_error))
  (global $cortex__msg_len (mut i32) (i32.const 0))

  (func $cortex_msg_begin
    (global.set $cortex__msg_len (i32.const 0)))

  (func $cortex_msg_add (param $ptr i32) (param $len i32)
    (local $room i32)
    (local.set $room (i32.sub (global.get $cortex__MSG_CAP) (global.get $cortex__msg_len)))
    (if (i32.gt_u (local.get $len) (local.get $room)) (then (local.set $len (local.get $room))))
    (memory.copy (i32.add (global.get $cortex__MSG) (global.get $cortex__msg_len))
                 (local.get $ptr) (local.get $len))
    (global.set $cortex__msg_len (i32.add (global.get $cortex__msg_len) (local.get $len))))

  (func $cortex_msg_add_u64 (param $v i64)
    (call $cortex_msg_add (call $cortex_fmt_u64 (local.get $v))))

  ;; Reports the message as the error; returns 0.
  (func $cortex_msg_error (result i32)
    (call $cortex_error (global.get $cortex__MSG) (global.get $cortex__msg_len)))

  (func $cortex_msg_log (param $level i32)
    (call $cortex_log (local.get $level) (global.get $cortex__MSG) (global.get $cortex__msg_len)))

  ;; Internal: SDK strings are a length byte followed by the bytes.
  (func $cortex__msg_add_s (param $s i32)
    (call $cortex_msg_add (i32.add (local.get $s) (i32.const 1)) (i32.load8_u (local.get $s))))

  (func $cortex__error_s (param $s i32) (result i32)
    (call $cortex_error (i32.add (local.get $s) (i32.const 1)) (i32.load8_u (local.get $s))))

  ;; ==========================================================================================
  ;; Output: the result is built at the top of the heap and grows in place, so its size need not
  ;; be known in advance. Between $cortex_out_begin and $cortex_out_end, call no allocating SDK
  ;; function ($cortex_alloc, $cortex_get_string, $cortex_decode_string).
  ;;
  ;;   (call $cortex_out_begin)
  ;;   (call $cortex_out_raw (i32.const 4200) (i32.const 10))          ;; {"result":
  ;;   (call $cortex_out_string (local.get $s) (local.get $s_len))     ;; "...escaped..."
  ;;   (call $cortex_out_byte (i32.const 125))                         ;; }
  ;;   (call $cortex_out_end)                                          ;; -> the result pointer
  ;;
  ;; $cortex_out_end writes the 4-byte little-endian length header in front of the JSON and
  ;; returns the pointer the capability must return (ABI v1 "Capabilities"). If memory ran out
  ;; while building, it reports "out of memory while building the result" and returns 0.
  ;; ==========================================================================================

  (global $cortex__out_start (mut i32) (i32.const 0))   ;; header address; 0 = no result open
  (global $cortex__out_pos (mut i32) (i32.const 0))     ;; next byte to write
  (global $cortex__out_failed (mut i32) (i32.const 0))  ;; 1 = out of memory, 2 = misuse

  (func $cortex_out_begin
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $cortex__heap_top) (i32.const 3)) (i32.const -4)))
    (global.set $cortex__heap_top (local.get $p))
    (global.set $cortex__out_start (local.get $p))
    (global.set $cortex__out_pos (local.get $p))
    (global.set $cortex__out_failed (i32.const 0))
    (drop (call $cortex__out_claim (i32.const 4))))     ;; room for the length header

  ;; Internal: reserves n more bytes of the open result; returns where to write them, or 0.
  (func $cortex__out_claim (param $n i32) (result i32)
    (local $p i32)
    (if (global.get $cortex__out_failed) (then (return (i32.const 0))))
    (local.set $p (global.get $cortex__out_pos))
    (if (i32.or (i32.eqz (global.get $cortex__out_start))
                (i32.ne (global.get $cortex__heap_top) (local.get $p)))
      (then (global.set $cortex__out_failed (i32.const 2)) (return (i32.const 0))))
    (if (i32.eqz (call $cortex__ensure
                   (i64.add (i64.extend_i32_u (local.get $p)) (i64.extend_i32_u (local.get $n)))))
      (then (global.set $cortex__out_failed (i32.const 1)) (return (i32.const 0))))
    (global.set $cortex__out_pos (i32.add (local.get $p) (local.get $n)))
    (global.set $cortex__heap_top (global.get $cortex__out_pos))
    (local.get $p))

  ;; Appends bytes as they are (JSON fragments you wrote yourself, or a whole JSON text).
  (func $cortex_out_raw (param $ptr i32) (param $len i32)
    (local $o i32)
    (local.set $o (call $cortex__out_claim (local.get $len)))
    (if (local.get $o) (then (memory.copy (local.get $o) (local.get $ptr) (local.get $len)))))

  (func $cortex_out_byte (param $b i32)
    (local $o i32)
    (local.set $o (call $cortex__out_claim (i32.const 1)))
    (if (local.get $o) (then (i32.store8 (local.get $o) (local.get $b)))))

  ;; Appends UTF-8 bytes JSON-escaped, without the quotes: '"' and '\' and control characters
  ;; below U+0020 are escaped (\b \t \n \f \r or \u00XX); everything else is copied, so valid
  ;; UTF-8 in gives valid JSON string content out.
  (func $cortex_out_escaped (param $ptr i32) (param $len i32)
    (local $i i32) (local $end i32) (local $n i64) (local $o i32) (local $c i32) (local $e i32)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    ;; pass 1: the escaped size
    (local.set $i (local.get $ptr))
    (block $counted
      (loop $count
        (br_if $counted (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $n (i64.add (local.get $n) (i64.load8_u offset=1024 (i32.load8_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $count)))
    (if (i64.gt_u (local.get $n) (i64.const 0xffffffff))
      (then (global.set $cortex__out_failed (i32.const 1)) (return)))
    (local.set $o (call $cortex__out_claim (i32.wrap_i64 (local.get $n))))
    (if (i32.eqz (local.get $o)) (then (return)))
    ;; pass 2: write
    (local.set $i (local.get $ptr))
    (block $written
      (loop $write
        (br_if $written (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (local.set $e (i32.load8_u offset=1024 (local.get $c)))
        (if (i32.eq (local.get $e) (i32.const 1))
          (then
            (i32.store8 (local.get $o) (local.get $c))
            (local.set $o (i32.add (local.get $o) (i32.const 1))))
          (else
            (i32.store8 (local.get $o) (i32.const 92))                                   ;; \
            (if (i32.eq (local.get $e) (i32.const 2))
              (then
                (i32.store8 offset=1 (local.get $o) (i32.load8_u offset=1296 (local.get $c)))
                (local.set $o (i32.add (local.get $o) (i32.const 2))))
              (else
                (i32.store8 offset=1 (local.get $o) (i32.const 117))                     ;; u
                (i32.store8 offset=2 (local.get $o) (i32.const 48))                      ;; 0
                (i32.store8 offset=3 (local.get $o) (i32.const 48))                      ;; 0
                (i32.store8 offset=4 (local.get $o)
                  (i32.load8_u offset=1280 (i32.shr_u (local.get $c) (i32.const 4))))
                (i32.store8 offset=5 (local.get $o)
                  (i32.load8_u offset=1280 (i32.and (local.get $c) (i32.const 15))))
                (local.set $o (i32.add (local.get $o) (i32.const 6)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $write))))

  ;; Appends a JSON string: quotes around the escaped bytes.
  (func $cortex_out_string (param $ptr i32) (param $len i32)
    (call $cortex_out_byte (i32.const 34))
    (call $cortex_out_escaped (local.get $ptr) (local.get $len))
    (call $cortex_out_byte (i32.const 34)))

  ;; Appends an unsigned decimal integer (JSON numbers up to 2^64-1 are decoded exactly).
  (func $cortex_out_u64 (param $v i64)
    (call $cortex_out_raw (call $cortex_fmt_u64 (local.get $v))))

  ;; Appends a signed decimal integer.
  (func $cortex_out_i64 (param $v i64)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (call $cortex_out_byte (i32.const 45))
        (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (call $cortex_out_u64 (local.get $v)))

  ;; Finishes the result: writes the length header and returns the result pointer (or 0 after
  ;; reporting an error).
  (func $cortex_out_end (result i32)
    (local $start i32)
    (local.set $start (global.get $cortex__out_start))
    (global.set $cortex__out_start (i32.const 0))
    (if (i32.eqz (local.get $start))
      (then (return (call $cortex__error_s (global.get $cortex__S_NO_RESULT)))))
    (if (i32.eq (global.get $cortex__out_failed) (i32.const 1))
      (then (return (call $cortex__error_s (global.get $cortex__S_OOM_RESULT)))))
    (if (global.get $cortex__out_failed)
      (then (return (call $cortex__error_s (global.get $cortex__S_INTERLEAVED)))))
    (i32.store (local.get $start)
      (i32.sub (i32.sub (global.get $cortex__out_pos) (local.get $start)) (i32.const 4)))
    (local.get $start))

  ;; A whole result from JSON text you already have (e.g. the input itself, or a constant such as
  ;; {"ok":true}): copies it behind a length header and returns the result pointer.
  (func $cortex_result_raw (param $ptr i32) (param $len i32) (result i32)
    (call $cortex_out_begin)
    (call $cortex_out_raw (local.get $ptr) (local.get $len))
    (call $cortex_out_end))

  ;; ==========================================================================================
  ;; Input: a validating JSON reader.
  ;;
  ;; $cortex_field (in, in_len, key, key_len) -> (ptr, len)
  ;;   Reads the input as one JSON object and finds the top-level member `key` (compared after
  ;;   decoding escapes, so "t\u0065xt" matches "text"; the last duplicate wins). Every other
  ;;   member is skipped, whatever it holds (nested objects/arrays, strings with escapes). The
  ;;   whole input is validated (strict JSON, UTF-8, nesting up to 1024 levels).
  ;;     found:    (ptr, len) of the member's raw JSON value inside the input, e.g. `"a\nb"`,
  ;;               `12.5`, `{"x":[1]}`; look at the first byte to see its type.
  ;;     absent:   (in, 0): a non-zero pointer with length 0 (a JSON value is never empty).
  ;;     invalid:  (0, 0) after reporting "invalid JSON input at byte N: ..." or "input must be
  ;;               a JSON object, got an array" through cortex.error.
  ;;
  ;; $cortex_get_string (in, in_len, key, key_len) -> (ptr, len)
  ;;   The decoded UTF-8 bytes of the required string member `key` (a fresh heap copy: yours
  ;;   to modify in place), or (0, 0) after reporting `missing required field "key" (a string)`,
  ;;   `field "key" must be a string, got a number`, or an $cortex_field error.
  ;;
  ;; $cortex_decode_string (raw, raw_len) -> (ptr, len)
  ;;   Decodes a JSON string value as returned by $cortex_field (first byte '"') to UTF-8 in a
  ;;   fresh heap block: \" \\ \/ \b \f \n \r \t and \uXXXX including surrogate pairs.
  ;;   Only for spans that $cortex_field has validated.
  ;; ==========================================================================================

  (global $cortex__pos (mut i32) (i32.const 0))      ;; read cursor
  (global $cortex__end (mut i32) (i32.const 0))      ;; end of the input
  (global $cortex__base (mut i32) (i32.const 0))     ;; start of the input (for byte offsets)
  (global $cortex__err (mut i32) (i32.const 0))      ;; first failure reason (SDK string), or 0
  (global $cortex__err_pos (mut i32) (i32.const 0))  ;; its byte offset
  (global $cortex__key (mut i32) (i32.const 0))      ;; raw bytes of the last key read
  (global $cortex__key_end (mut i32) (i32.const 0))

  ;; Records the first failure; returns 0.
  (func $cortex__fail (param $reason i32) (result i32)
    (if (i32.eqz (global.get $cortex__err))
      (then
        (global.set $cortex__err (local.get $reason))
        (global.set $cortex__err_pos (i32.sub (global.get $cortex__pos) (global.get $cortex__base)))))
    (i32.const 0))

  ;; The next byte, or -1 at the end.
  (func $cortex__peek (result i32)
    (if (result i32) (i32.lt_u (global.get $cortex__pos) (global.get $cortex__end))
      (then (i32.load8_u (global.get $cortex__pos)))
      (else (i32.const -1))))

  (func $cortex__advance
    (global.set $cortex__pos (i32.add (global.get $cortex__pos) (i32.const 1))))

  (func $cortex__ws
    (local $p i32) (local $c i32)
    (local.set $p (global.get $cortex__pos))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (global.get $cortex__end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done
          (i32.eqz
            (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 10)))
                    (i32.or (i32.eq (local.get $c) (i32.const 9)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (global.set $cortex__pos (local.get $p)))

  ;; The value of a hex digit, or -1.
  (func $cortex__hexval (param $c i32) (result i32)
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10))
      (then (return (i32.sub (local.get $c) (i32.const 48)))))
    (local.set $c (i32.or (local.get $c) (i32.const 32)))
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 6))
      (then (return (i32.sub (local.get $c) (i32.const 87)))))
    (i32.const -1))

  ;; Reads the 4 hex digits of a \u escape at the cursor; -1 (and a recorded failure) if invalid.
  (func $cortex__hex4 (result i32)
    (local $v i32) (local $i i32) (local $h i32)
    (if (i32.lt_u (i32.sub (global.get $cortex__end) (global.get $cortex__pos)) (i32.const 4))
      (then (drop (call $cortex__fail (global.get $cortex__R_TRUNC_U))) (return (i32.const -1))))
    (loop $next
      (local.set $h (call $cortex__hexval
                      (i32.load8_u (i32.add (global.get $cortex__pos) (local.get $i)))))
      (if (i32.lt_s (local.get $h) (i32.const 0))
        (then (drop (call $cortex__fail (global.get $cortex__R_BAD_HEX))) (return (i32.const -1))))
      (local.set $v (i32.or (i32.shl (local.get $v) (i32.const 4)) (local.get $h)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 4))))
    (global.set $cortex__pos (i32.add (global.get $cortex__pos) (i32.const 4)))
    (local.get $v))

  ;; Length of the valid UTF-8 sequence at p (avail bytes left), or 0 if it is invalid (bad lead
  ;; byte, truncated, overlong, a UTF-16 surrogate, above U+10FFFF).
  (func $cortex__utf8_seq (param $p i32) (param $avail i32) (result i32)
    (local $c i32) (local $c1 i32)
    (local.set $c (i32.load8_u (local.get $p)))
    (if (i32.lt_u (local.get $c) (i32.const 0x80)) (then (return (i32.const 1))))
    (if (i32.lt_u (local.get $c) (i32.const 0xc2)) (then (return (i32.const 0))))
    (if (i32.gt_u (local.get $c) (i32.const 0xf4)) (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $avail) (i32.const 2)) (then (return (i32.const 0))))
    (local.set $c1 (i32.load8_u offset=1 (local.get $p)))
    (if (i32.ne (i32.and (local.get $c1) (i32.const 0xc0)) (i32.const 0x80)) (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $c) (i32.const 0xe0)) (then (return (i32.const 2))))
    (if (i32.lt_u (local.get $avail) (i32.const 3)) (then (return (i32.const 0))))
    (if (i32.ne (i32.and (i32.load8_u offset=2 (local.get $p)) (i32.const 0xc0)) (i32.const 0x80))
      (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $c) (i32.const 0xf0))
      (then
        (if (i32.and (i32.eq (local.get $c) (i32.const 0xe0)) (i32.lt_u (local.get $c1) (i32.const 0xa0)))
          (then (return (i32.const 0))))                                   ;; overlong
        (if (i32.and (i32.eq (local.get $c) (i32.const 0xed)) (i32.ge_u (local.get $c1) (i32.const 0xa0)))
          (then (return (i32.const 0))))                                   ;; surrogate
        (return (i32.const 3))))
    (if (i32.lt_u (local.get $avail) (i32.const 4)) (then (return (i32.const 0))))
    (if (i32.ne (i32.and (i32.load8_u offset=3 (local.get $p)) (i32.const 0xc0)) (i32.const 0x80))
      (then (return (i32.const 0))))
    (if (i32.and (i32.eq (local.get $c) (i32.const 0xf0)) (i32.lt_u (local.get $c1) (i32.const 0x90)))
      (then (return (i32.const 0))))                                       ;; overlong
    (if (i32.and (i32.eq (local.get $c) (i32.const 0xf4)) (i32.ge_u (local.get $c1) (i32.const 0x90)))
      (then (return (i32.const 0))))                                       ;; above U+10FFFF
    (i32.const 4))

  ;; Validates and skips the JSON string at the cursor (which must be '"'). 1 or 0.
  (func $cortex__string (result i32)
    (local $p i32) (local $end i32) (local $c i32) (local $e i32) (local $cp i32) (local $k i32)
    (local.set $p (global.get $cortex__pos))
    (local.set $end (global.get $cortex__end))
    (if (i32.or (i32.ge_u (local.get $p) (local.get $end))
                (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)))
      (then (return (call $cortex__fail (global.get $cortex__R_EXPECT_QUOTE)))))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (loop $next
      (if (i32.ge_u (local.get $p) (local.get $end))
        (then
          (global.set $cortex__pos (local.get $p))
          (return (call $cortex__fail (global.get $cortex__R_UNTERMINATED)))))
      (local.set $c (i32.load8_u (local.get $p)))
      ;; fast path: printable ASCII other than '"' and '\'
      (if (i32.and (i32.lt_u (local.get $c) (i32.const 0x80))
                   (i32.eq (i32.load8_u offset=1024 (local.get $c)) (i32.const 1)))
        (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $next)))
      (if (i32.eq (local.get $c) (i32.const 34))                             ;; closing quote
        (then
          (global.set $cortex__pos (i32.add (local.get $p) (i32.const 1)))
          (return (i32.const 1))))
      (if (i32.eq (local.get $c) (i32.const 92))                             ;; escape
        (then
          (if (i32.ge_u (i32.add (local.get $p) (i32.const 1)) (local.get $end))
            (then
              (global.set $cortex__pos (i32.add (local.get $p) (i32.const 1)))
              (return (call $cortex__fail (global.get $cortex__R_UNTERMINATED)))))
          (local.set $e (i32.load8_u offset=1 (local.get $p)))
          (local.set $p (i32.add (local.get $p) (i32.const 2)))
          (if (i32.eq (local.get $e) (i32.const 117))                        ;; \uXXXX
            (then
              (global.set $cortex__pos (local.get $p))
              (local.set $cp (call $cortex__hex4))
              (if (i32.lt_s (local.get $cp) (i32.const 0)) (then (return (i32.const 0))))
              (if (i32.eq (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xd800))
                (then
                  ;; a high surrogate must be followed by \u and a low surrogate
                  (if (i32.or (i32.lt_u (i32.sub (local.get $end) (global.get $cortex__pos)) (i32.const 2))
                              (i32.ne (i32.load16_u (global.get $cortex__pos)) (i32.const 0x755c)))
                    (then (return (call $cortex__fail (global.get $cortex__R_UNPAIRED_HIGH)))))
                  (global.set $cortex__pos (i32.add (global.get $cortex__pos) (i32.const 2)))
                  (local.set $cp (call $cortex__hex4))
                  (if (i32.lt_s (local.get $cp) (i32.const 0)) (then (return (i32.const 0))))
                  (if (i32.ne (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xdc00))
                    (then (return (call $cortex__fail (global.get $cortex__R_UNPAIRED_HIGH))))))
                (else
                  (if (i32.eq (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xdc00))
                    (then (return (call $cortex__fail (global.get $cortex__R_UNPAIRED_LOW)))))))
              (local.set $p (global.get $cortex__pos))
              (br $next)))
          ;; \" \\ \/ \b \f \n \r \t
          (if (i32.or
                (i32.or (i32.or (i32.eq (local.get $e) (i32.const 34)) (i32.eq (local.get $e) (i32.const 92)))
                        (i32.or (i32.eq (local.get $e) (i32.const 47)) (i32.eq (local.get $e) (i32.const 98))))
                (i32.or (i32.or (i32.eq (local.get $e) (i32.const 102)) (i32.eq (local.get $e) (i32.const 110)))
                        (i32.or (i32.eq (local.get $e) (i32.const 114)) (i32.eq (local.get $e) (i32.const 116)))))
            (then (br $next)))
          (global.set $cortex__pos (i32.sub (local.get $p) (i32.const 1)))
          (return (call $cortex__fail (global.get $cortex__R_BAD_ESCAPE)))))
      (if (i32.lt_u (local.get $c) (i32.const 0x20))
        (then
          (global.set $cortex__pos (local.get $p))
          (return (call $cortex__fail (global.get $cortex__R_CONTROL)))))
      ;; c >= 0x80: one validated UTF-8 sequence
      (local.set $k (call $cortex__utf8_seq (local.get $p) (i32.sub (local.get $end) (local.get $p))))
      (if (i32.eqz (local.get $k))
        (then
          (global.set $cortex__pos (local.get $p))
          (return (call $cortex__fail (global.get $cortex__R_BAD_UTF8)))))
      (local.set $p (i32.add (local.get $p) (local.get $k)))
      (br $next))
    (unreachable))

  ;; Skips decimal digits; returns how many.
  (func $cortex__digits (result i32)
    (local $p i32) (local $start i32)
    (local.set $p (global.get $cortex__pos))
    (local.set $start (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (global.get $cortex__end)))
        (br_if $done (i32.ge_u (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)) (i32.const 10)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (global.set $cortex__pos (local.get $p))
    (i32.sub (local.get $p) (local.get $start)))

  ;; Validates and skips a JSON number.
  (func $cortex__number (result i32)
    (local $c i32)
    (if (i32.eq (call $cortex__peek) (i32.const 45)) (then (call $cortex__advance)))      ;; -
    (if (i32.eq (call $cortex__peek) (i32.const 48))                                    ;; 0
      (then (call $cortex__advance))
      (else
        (if (i32.eqz (call $cortex__digits))
          (then (return (call $cortex__fail (global.get $cortex__R_BAD_NUMBER)))))))
    (if (i32.eq (call $cortex__peek) (i32.const 46))                                    ;; .
      (then
        (call $cortex__advance)
        (if (i32.eqz (call $cortex__digits))
          (then (return (call $cortex__fail (global.get $cortex__R_BAD_NUMBER)))))))
    (if (i32.eq (i32.or (call $cortex__peek) (i32.const 32)) (i32.const 101))          ;; e E
      (then
        (call $cortex__advance)
        (local.set $c (call $cortex__peek))
        (if (i32.or (i32.eq (local.get $c) (i32.const 43)) (i32.eq (local.get $c) (i32.const 45)))
          (then (call $cortex__advance)))
        (if (i32.eqz (call $cortex__digits))
          (then (return (call $cortex__fail (global.get $cortex__R_BAD_NUMBER)))))))
    (i32.const 1))

  ;; Skips the literal `lit` (an SDK string: true, false, null).
  (func $cortex__literal (param $lit i32) (result i32)
    (local $n i32)
    (local.set $n (i32.load8_u (local.get $lit)))
    (if (i32.or
          (i32.lt_u (i32.sub (global.get $cortex__end) (global.get $cortex__pos)) (local.get $n))
          (i32.eqz (call $cortex_eq (global.get $cortex__pos) (local.get $n)
                                    (i32.add (local.get $lit) (i32.const 1)) (local.get $n))))
      (then (return (call $cortex__fail (global.get $cortex__R_BAD_LITERAL)))))
    (global.set $cortex__pos (i32.add (global.get $cortex__pos) (local.get $n)))
    (i32.const 1))

  ;; Reads `"key" ws ':'` inside an object; the raw key bytes are [$cortex__key, $cortex__key_end).
  (func $cortex__key_colon (result i32)
    (if (i32.ne (call $cortex__peek) (i32.const 34))
      (then (return (call $cortex__fail (global.get $cortex__R_EXPECT_KEY)))))
    (global.set $cortex__key (i32.add (global.get $cortex__pos) (i32.const 1)))
    (if (i32.eqz (call $cortex__string)) (then (return (i32.const 0))))
    (global.set $cortex__key_end (i32.sub (global.get $cortex__pos) (i32.const 1)))
    (call $cortex__ws)
    (if (i32.ne (call $cortex__peek) (i32.const 58))
      (then (return (call $cortex__fail (global.get $cortex__R_EXPECT_COLON)))))
    (call $cortex__advance)
    (i32.const 1))

  ;; The SDK string naming the type of a JSON value starting with byte c.
  (func $cortex__type_name (param $c i32) (result i32)
    (if (i32.eq (local.get $c) (i32.const 123)) (then (return (global.get $cortex__T_OBJECT))))
    (if (i32.eq (local.get $c) (i32.const 91)) (then (return (global.get $cortex__T_ARRAY))))
    (if (i32.eq (local.get $c) (i32.const 34)) (then (return (global.get $cortex__T_STRING))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 116)) (i32.eq (local.get $c) (i32.const 102)))
      (then (return (global.get $cortex__T_BOOLEAN))))
    (if (i32.eq (local.get $c) (i32.const 110)) (then (return (global.get $cortex__T_NULL))))
    (global.get $cortex__T_NUMBER))

  ;; Validates and skips any JSON value at the cursor (leading whitespace allowed). Iterative:
  ;; open containers are kept on a bit stack (1 = object, 0 = array), so deep nesting cannot
  ;; overflow the wasm stack.
  (func $cortex__skip_value (result i32)
    (local $depth i32) (local $c i32) (local $obj i32) (local $at i32) (local $bit i32)
    (loop $value
      (call $cortex__ws)
      (local.set $c (call $cortex__peek))
      (block $complete
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
          (then
            (if (i32.eq (local.get $depth) (i32.const 1024))
              (then (return (call $cortex__fail (global.get $cortex__R_TOO_DEEP)))))
            (local.set $obj (i32.eq (local.get $c) (i32.const 123)))
            (call $cortex__advance)
            (call $cortex__ws)
            ;; '{' + 2 = '}', '[' + 2 = ']': an empty container is a complete value
            (if (i32.eq (call $cortex__peek) (i32.add (local.get $c) (i32.const 2)))
              (then (call $cortex__advance) (br $complete)))
            (local.set $at (i32.add (global.get $cortex__NEST) (i32.shr_u (local.get $depth) (i32.const 3))))
            (local.set $bit (i32.shl (i32.const 1) (i32.and (local.get $depth) (i32.const 7))))
            (i32.store8 (local.get $at)
              (if (result i32) (local.get $obj)
                (then (i32.or (i32.load8_u (local.get $at)) (local.get $bit)))
                (else (i32.and (i32.load8_u (local.get $at)) (i32.xor (local.get $bit) (i32.const -1))))))
            (local.set $depth (i32.add (local.get $depth) (i32.const 1)))
            (if (local.get $obj)
              (then (if (i32.eqz (call $cortex__key_colon)) (then (return (i32.const 0))))))
            (br $value)))
        (if (i32.eq (local.get $c) (i32.const 34))
          (then (br_if $complete (call $cortex__string)) (return (i32.const 0))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 45))
                    (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))
          (then (br_if $complete (call $cortex__number)) (return (i32.const 0))))
        (if (i32.eq (local.get $c) (i32.const 116))
          (then (br_if $complete (call $cortex__literal (global.get $cortex__L_TRUE))) (return (i32.const 0))))
        (if (i32.eq (local.get $c) (i32.const 102))
          (then (br_if $complete (call $cortex__literal (global.get $cortex__L_FALSE))) (return (i32.const 0))))
        (if (i32.eq (local.get $c) (i32.const 110))
          (then (br_if $complete (call $cortex__literal (global.get $cortex__T_NULL))) (return (i32.const 0))))
        (if (i32.lt_s (local.get $c) (i32.const 0))
          (then (return (call $cortex__fail (global.get $cortex__R_EOF_VALUE)))))
        (return (call $cortex__fail (global.get $cortex__R_BAD_VALUE))))
      ;; a value is complete: close containers, or go on to the next member
      (loop $close
        (if (i32.eqz (local.get $depth)) (then (return (i32.const 1))))
        (call $cortex__ws)
        (local.set $at (i32.sub (local.get $depth) (i32.const 1)))
        (local.set $obj
          (i32.and
            (i32.shr_u (i32.load8_u (i32.add (global.get $cortex__NEST) (i32.shr_u (local.get $at) (i32.const 3))))
                       (i32.and (local.get $at) (i32.const 7)))
            (i32.const 1)))
        (local.set $c (call $cortex__peek))
        (if (i32.eq (local.get $c) (i32.const 44))                                        ;; ,
          (then
            (call $cortex__advance)
            (if (local.get $obj)
              (then
                (call $cortex__ws)
                (if (i32.eqz (call $cortex__key_colon)) (then (return (i32.const 0))))))
            (br $value)))
        (if (i32.eq (local.get $c) (select (i32.const 125) (i32.const 93) (local.get $obj)))  ;; } ]
          (then
            (call $cortex__advance)
            (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
            (br $close)))
        (return (call $cortex__fail
                  (select (global.get $cortex__R_EXPECT_OBJ) (global.get $cortex__R_EXPECT_ARR)
                          (local.get $obj))))))
    (unreachable))

  ;; Internal: reads 4 hex digits at p (already validated).
  (func $cortex__hex4_at (param $p i32) (result i32)
    (i32.or
      (i32.or (i32.shl (call $cortex__hexval (i32.load8_u (local.get $p))) (i32.const 12))
              (i32.shl (call $cortex__hexval (i32.load8_u offset=1 (local.get $p))) (i32.const 8)))
      (i32.or (i32.shl (call $cortex__hexval (i32.load8_u offset=2 (local.get $p))) (i32.const 4))
              (call $cortex__hexval (i32.load8_u offset=3 (local.get $p))))))

  ;; Internal: writes code point cp as UTF-8 at dst; returns the new dst.
  (func $cortex__utf8_put (param $dst i32) (param $cp i32) (result i32)
    (if (i32.lt_u (local.get $cp) (i32.const 0x80))
      (then
        (i32.store8 (local.get $dst) (local.get $cp))
        (return (i32.add (local.get $dst) (i32.const 1)))))
    (if (i32.lt_u (local.get $cp) (i32.const 0x800))
      (then
        (i32.store8 (local.get $dst) (i32.or (i32.const 0xc0) (i32.shr_u (local.get $cp) (i32.const 6))))
        (i32.store8 offset=1 (local.get $dst) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 0x3f))))
        (return (i32.add (local.get $dst) (i32.const 2)))))
    (if (i32.lt_u (local.get $cp) (i32.const 0x10000))
      (then
        (i32.store8 (local.get $dst) (i32.or (i32.const 0xe0) (i32.shr_u (local.get $cp) (i32.const 12))))
        (i32.store8 offset=1 (local.get $dst)
          (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 6)) (i32.const 0x3f))))
        (i32.store8 offset=2 (local.get $dst) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 0x3f))))
        (return (i32.add (local.get $dst) (i32.const 3)))))
    (i32.store8 (local.get $dst) (i32.or (i32.const 0xf0) (i32.shr_u (local.get $cp) (i32.const 18))))
    (i32.store8 offset=1 (local.get $dst)
      (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 12)) (i32.const 0x3f))))
    (i32.store8 offset=2 (local.get $dst)
      (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 6)) (i32.const 0x3f))))
    (i32.store8 offset=3 (local.get $dst) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 0x3f))))
    (i32.add (local.get $dst) (i32.const 4)))

  ;; Internal: decodes validated JSON string content [src, end) (no quotes) to UTF-8 at dst;
  ;; returns the new dst. The output is never longer than the input.
  (func $cortex__decode_into (param $src i32) (param $end i32) (param $dst i32) (result i32)
    (local $c i32) (local $cp i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $src)))
        (if (i32.ne (local.get $c) (i32.const 92))
          (then
            (i32.store8 (local.get $dst) (local.get $c))
            (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
            (local.set $src (i32.add (local.get $src) (i32.const 1)))
            (br $next)))
        (local.set $c (i32.load8_u offset=1 (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 2)))
        (if (i32.eq (local.get $c) (i32.const 117))                                    ;; \uXXXX
          (then
            (local.set $cp (call $cortex__hex4_at (local.get $src)))
            (local.set $src (i32.add (local.get $src) (i32.const 4)))
            (if (i32.eq (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xd800))
              (then                                                                    ;; + \uDC00..
                (local.set $cp
                  (i32.add (i32.const 0x10000)
                    (i32.or (i32.shl (i32.sub (local.get $cp) (i32.const 0xd800)) (i32.const 10))
                            (i32.sub (call $cortex__hex4_at (i32.add (local.get $src) (i32.const 2)))
                                     (i32.const 0xdc00)))))
                (local.set $src (i32.add (local.get $src) (i32.const 6)))))
            (local.set $dst (call $cortex__utf8_put (local.get $dst) (local.get $cp)))
            (br $next)))
        ;; \b \f \n \r \t; \" \\ \/ stand for themselves
        (if (i32.eq (local.get $c) (i32.const 98)) (then (local.set $c (i32.const 8))))
        (if (i32.eq (local.get $c) (i32.const 102)) (then (local.set $c (i32.const 12))))
        (if (i32.eq (local.get $c) (i32.const 110)) (then (local.set $c (i32.const 10))))
        (if (i32.eq (local.get $c) (i32.const 114)) (then (local.set $c (i32.const 13))))
        (if (i32.eq (local.get $c) (i32.const 116)) (then (local.set $c (i32.const 9))))
        (i32.store8 (local.get $dst) (local.get $c))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (br $next)))
    (local.get $dst))

  ;; Internal: 1 if the last key read equals key once decoded. Decodes into scratch space above the
  ;; heap top (nothing is allocated). Records a failure and returns 0 if memory cannot grow.
  (func $cortex__key_is (param $key i32) (param $key_len i32) (result i32)
    (local $raw i32) (local $raw_len i32) (local $scratch i32)
    (local.set $raw (global.get $cortex__key))
    (local.set $raw_len (i32.sub (global.get $cortex__key_end) (local.get $raw)))
    (if (call $cortex_eq (local.get $raw) (local.get $raw_len) (local.get $key) (local.get $key_len))
      (then (return (i32.const 1))))
    ;; An escaped key ("t\u0065xt") can still be equal: every decoded byte takes at most 6 raw bytes.
    (if (i64.gt_u (i64.extend_i32_u (local.get $raw_len))
                  (i64.mul (i64.extend_i32_u (local.get $key_len)) (i64.const 6)))
      (then (return (i32.const 0))))
    (local.set $scratch (global.get $cortex__heap_top))
    (if (i32.eqz (call $cortex__ensure (i64.add (i64.extend_i32_u (local.get $scratch))
                                                (i64.extend_i32_u (local.get $raw_len)))))
      (then (return (call $cortex__fail (global.get $cortex__S_OOM)))))
    (call $cortex_eq
      (local.get $scratch)
      (i32.sub (call $cortex__decode_into (local.get $raw) (global.get $cortex__key_end) (local.get $scratch))
               (local.get $scratch))
      (local.get $key) (local.get $key_len)))

  (func $cortex_field (param $in i32) (param $in_len i32) (param $key i32) (param $key_len i32)
                      (result i32 i32)
    (local $c i32) (local $vstart i32) (local $match i32) (local $found i32) (local $found_len i32)
    (global.set $cortex__base (local.get $in))
    (global.set $cortex__pos (local.get $in))
    (global.set $cortex__end (i32.add (local.get $in) (local.get $in_len)))
    (global.set $cortex__err (i32.const 0))
    (block $bad
      (call $cortex__ws)
      (local.set $c (call $cortex__peek))
      (if (i32.lt_s (local.get $c) (i32.const 0))
        (then (drop (call $cortex__fail (global.get $cortex__R_EMPTY))) (br $bad)))
      (if (i32.ne (local.get $c) (i32.const 123))
        (then
          ;; valid JSON but not an object (or invalid JSON: report that first)
          (br_if $bad (i32.eqz (call $cortex__skip_value)))
          (call $cortex__ws)
          (if (i32.ne (global.get $cortex__pos) (global.get $cortex__end))
            (then (drop (call $cortex__fail (global.get $cortex__R_TRAILING))) (br $bad)))
          (call $cortex_msg_begin)
          (call $cortex__msg_add_s (global.get $cortex__S_NOT_OBJECT))
          (call $cortex__msg_add_s (call $cortex__type_name (local.get $c)))
          (drop (call $cortex_msg_error))
          (return (i32.const 0) (i32.const 0))))
      (call $cortex__advance)
      (call $cortex__ws)
      (if (i32.eq (call $cortex__peek) (i32.const 125))
        (then (call $cortex__advance))
        (else
          (loop $member
            (call $cortex__ws)
            (br_if $bad (i32.eqz (call $cortex__key_colon)))
            (call $cortex__ws)
            (local.set $vstart (global.get $cortex__pos))
            (local.set $match (call $cortex__key_is (local.get $key) (local.get $key_len)))
            (br_if $bad (global.get $cortex__err))
            (br_if $bad (i32.eqz (call $cortex__skip_value)))
            (if (local.get $match)
              (then
                (local.set $found (local.get $vstart))
                (local.set $found_len (i32.sub (global.get $cortex__pos) (local.get $vstart)))))
            (call $cortex__ws)
            (local.set $c (call $cortex__peek))
            (if (i32.eq (local.get $c) (i32.const 44)) (then (call $cortex__advance) (br $member)))
            (if (i32.ne (local.get $c) (i32.const 125))
              (then (drop (call $cortex__fail (global.get $cortex__R_EXPECT_OBJ))) (br $bad)))
            (call $cortex__advance))))
      (call $cortex__ws)
      (if (i32.ne (global.get $cortex__pos) (global.get $cortex__end))
        (then (drop (call $cortex__fail (global.get $cortex__R_TRAILING))) (br $bad)))
      (if (i32.eqz (local.get $found_len)) (then (return (local.get $in) (i32.const 0))))
      (return (local.get $found) (local.get $found_len)))
    ;; malformed JSON
    (call $cortex_msg_begin)
    (call $cortex__msg_add_s (global.get $cortex__S_INVALID_AT))
    (call $cortex_msg_add_u64 (i64.extend_i32_u (global.get $cortex__err_pos)))
    (call $cortex__msg_add_s (global.get $cortex__S_COLON))
    (call $cortex__msg_add_s (global.get $cortex__err))
    (drop (call $cortex_msg_error))
    (i32.const 0) (i32.const 0))

  (func $cortex_decode_string (param $raw i32) (param $raw_len i32) (result i32 i32)
    (local $dst i32) (local $n i32)
    (local.set $dst (call $cortex_alloc (i32.sub (local.get $raw_len) (i32.const 2))))
    (if (i32.eqz (local.get $dst))
      (then (drop (call $cortex__error_s (global.get $cortex__S_OOM))) (return (i32.const 0) (i32.const 0))))
    (local.set $n
      (i32.sub
        (call $cortex__decode_into
          (i32.add (local.get $raw) (i32.const 1))
          (i32.sub (i32.add (local.get $raw) (local.get $raw_len)) (i32.const 1))
          (local.get $dst))
        (local.get $dst)))
    ;; give back the unused tail: this block is the newest allocation
    (global.set $cortex__heap_top (i32.add (local.get $dst) (local.get $n)))
    (local.get $dst) (local.get $n))

  (func $cortex_get_string (param $in i32) (param $in_len i32) (param $key i32) (param $key_len i32)
                           (result i32 i32)
    (local $v i32) (local $n i32)
    (call $cortex_field (local.get $in) (local.get $in_len) (local.get $key) (local.get $key_len))
    (local.set $n)
    (local.set $v)
    (if (i32.eqz (local.get $v)) (then (return (i32.const 0) (i32.const 0))))
    (if (i32.eqz (local.get $n))
      (then
        (call $cortex_msg_begin)
        (call $cortex__msg_add_s (global.get $cortex__S_MISSING))
        (call $cortex_msg_add (local.get $key) (local.get $key_len))
        (call $cortex__msg_add_s (global.get $cortex__S_A_STRING))
        (drop (call $cortex_msg_error))
        (return (i32.const 0) (i32.const 0))))
    (if (i32.ne (i32.load8_u (local.get $v)) (i32.const 34))
      (then
        (call $cortex_msg_begin)
        (call $cortex__msg_add_s (global.get $cortex__S_FIELD))
        (call $cortex_msg_add (local.get $key) (local.get $key_len))
        (call $cortex__msg_add_s (global.get $cortex__S_MUST_STRING))
        (call $cortex__msg_add_s (call $cortex__type_name (i32.load8_u (local.get $v))))
        (drop (call $cortex_msg_error))
        (return (i32.const 0) (i32.const 0))))
    (call $cortex_decode_string (local.get $v) (local.get $n)))

  ;; ================================ end of the Cortex WAT SDK ================================
