;; conformance-wat: the Cortex conformance plugin (conformance/README.md), hand-written in
;; WebAssembly text on top of the WAT SDK (sdk/wat/cortex.wat, spliced in by build.sh at the
;; `@include` line below). It uses only the SDK's public `$cortex_*` functions.
;;
;; Capabilities (ABI v1: (i32 input_ptr, i32 input_len) -> i32 result_ptr):
;;   transform  {"text": s, "mode": m} -> {"result": s', "length": N, "hash": N}
;;   echo       any JSON -> the input bytes, unchanged
;;   fail       {"message": s} -> reports s as the error
;;   log        {"message": s} -> logs s at level info, returns {"logged": true}
(module
  ;; @include cortex.wat

  ;; ---- this plugin's data: 4096 .. 65535 is reserved for plugins (see the SDK memory map) ----
  (data (i32.const 4096) "text")                 ;; 4096, 4 bytes
  (data (i32.const 4112) "mode")                 ;; 4112, 4
  (data (i32.const 4128) "message")              ;; 4128, 7
  (data (i32.const 4144) "reverse")              ;; 4144, 7
  (data (i32.const 4160) "uppercase")            ;; 4160, 9
  (data (i32.const 4176) "lowercase")            ;; 4176, 9
  (data (i32.const 4192) "rot13")                ;; 4192, 5
  (data (i32.const 4208) "{\"result\":")         ;; 4208, 10
  (data (i32.const 4224) ",\"length\":")         ;; 4224, 10
  (data (i32.const 4240) ",\"hash\":")           ;; 4240, 8
  (data (i32.const 4256) "{\"logged\":true}")    ;; 4256, 15

  ;; ---- text transformations, in place on decoded UTF-8 ----------------------------------------

  ;; Reverses the bytes of [i, end).
  (func $reverse_range (param $i i32) (param $end i32)
    (local $j i32) (local $t i32)
    (local.set $j (i32.sub (local.get $end) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_u (local.get $i) (local.get $j)))
        (local.set $t (i32.load8_u (local.get $i)))
        (i32.store8 (local.get $i) (i32.load8_u (local.get $j)))
        (i32.store8 (local.get $j) (local.get $t))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (br $swap))))

  ;; Reverses valid UTF-8 by code point: reverse all bytes, then put the bytes of every
  ;; multi-byte sequence (now continuation bytes followed by their lead byte) back in order.
  (func $reverse_utf8 (param $s i32) (param $n i32)
    (local $i i32) (local $j i32) (local $end i32)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (call $reverse_range (local.get $s) (local.get $end))
    (local.set $i (local.get $s))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (if (i32.eq (i32.and (i32.load8_u (local.get $i)) (i32.const 0xc0)) (i32.const 0x80))
          (then
            (local.set $j (local.get $i))
            (block $found
              (loop $scan
                (br_if $found (i32.ge_u (local.get $j) (local.get $end)))
                (br_if $found (i32.ne (i32.and (i32.load8_u (local.get $j)) (i32.const 0xc0)) (i32.const 0x80)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $scan)))
            ;; $j is the lead byte of this sequence (or the end, for invalid input)
            (if (i32.lt_u (local.get $j) (local.get $end))
              (then (local.set $j (i32.add (local.get $j) (i32.const 1)))))
            (call $reverse_range (local.get $i) (local.get $j))
            (local.set $i (local.get $j)))
          (else (local.set $i (i32.add (local.get $i) (i32.const 1)))))
        (br $next))))

  ;; ASCII-only case mapping: other bytes (including all of non-ASCII UTF-8) are unchanged.
  (func $ascii_upper (param $s i32) (param $n i32)
    (local $end i32) (local $c i32)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $s)))
        (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))     ;; a..z
          (then (i32.store8 (local.get $s) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next))))

  (func $ascii_lower (param $s i32) (param $n i32)
    (local $end i32) (local $c i32)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $s)))
        (if (i32.lt_u (i32.sub (local.get $c) (i32.const 65)) (i32.const 26))     ;; A..Z
          (then (i32.store8 (local.get $s) (i32.add (local.get $c) (i32.const 32)))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next))))

  (func $ascii_rot13 (param $s i32) (param $n i32)
    (local $end i32) (local $c i32) (local $k i32)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $s)))
        ;; k = position in the alphabet, ignoring case (c | 0x20 maps A..Z onto a..z)
        (local.set $k (i32.sub (i32.or (local.get $c) (i32.const 32)) (i32.const 97)))
        (if (i32.lt_u (local.get $k) (i32.const 26))
          (then
            (i32.store8 (local.get $s)
              (select (i32.add (local.get $c) (i32.const 13))
                      (i32.sub (local.get $c) (i32.const 13))
                      (i32.lt_u (local.get $k) (i32.const 13))))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next))))

  ;; simple_hash: h = h * 31 + byte over the UTF-8 bytes, wrapping unsigned 64-bit
  ;; (i64.mul/i64.add wrap; the result is printed unsigned by $cortex_out_u64).
  (func $simple_hash (param $s i32) (param $n i32) (result i64)
    (local $end i32) (local $h i64)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 31))
                               (i64.load8_u (local.get $s))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next)))
    (local.get $h))

  ;; ---- capabilities ----------------------------------------------------------------------------

  (func $transform (export "transform") (param $in i32) (param $in_len i32) (result i32)
    (local $text i32) (local $text_len i32) (local $mode i32) (local $mode_len i32) (local $hash i64)
    (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4096) (i32.const 4))
    (local.set $text_len)
    (local.set $text)
    (if (i32.eqz (local.get $text)) (then (return (i32.const 0))))
    (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4112) (i32.const 4))
    (local.set $mode_len)
    (local.set $mode)
    (if (i32.eqz (local.get $mode)) (then (return (i32.const 0))))

    (if (call $cortex_eq (local.get $mode) (local.get $mode_len) (i32.const 4144) (i32.const 7))
      (then (call $reverse_utf8 (local.get $text) (local.get $text_len)))
    (else (if (call $cortex_eq (local.get $mode) (local.get $mode_len) (i32.const 4160) (i32.const 9))
      (then (call $ascii_upper (local.get $text) (local.get $text_len)))
    (else (if (call $cortex_eq (local.get $mode) (local.get $mode_len) (i32.const 4176) (i32.const 9))
      (then (call $ascii_lower (local.get $text) (local.get $text_len)))
    (else (if (call $cortex_eq (local.get $mode) (local.get $mode_len) (i32.const 4192) (i32.const 5))
      (then (call $ascii_rot13 (local.get $text) (local.get $text_len))))))))))
    ;; any other mode: unchanged
    (local.set $hash (call $simple_hash (local.get $text) (local.get $text_len)))

    (call $cortex_out_begin)
    (call $cortex_out_raw (i32.const 4208) (i32.const 10))                  ;; {"result":
    (call $cortex_out_string (local.get $text) (local.get $text_len))
    (call $cortex_out_raw (i32.const 4224) (i32.const 10))                  ;; ,"length":
    (call $cortex_out_u64 (i64.extend_i32_u (local.get $text_len)))
    (call $cortex_out_raw (i32.const 4240) (i32.const 8))                   ;; ,"hash":
    (call $cortex_out_u64 (local.get $hash))
    (call $cortex_out_byte (i32.const 125))                                 ;; }
    (call $cortex_out_end))

  ;; The SDK's raw-bytes path: the input JSON text is copied behind a length header.
  (func $echo (export "echo") (param $in i32) (param $in_len i32) (result i32)
    (call $cortex_result_raw (local.get $in) (local.get $in_len)))

  (func $fail (export "fail") (param $in i32) (param $in_len i32) (result i32)
    (local $msg i32) (local $msg_len i32)
    (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4128) (i32.const 7))
    (local.set $msg_len)
    (local.set $msg)
    (if (i32.eqz (local.get $msg)) (then (return (i32.const 0))))
    (call $cortex_error (local.get $msg) (local.get $msg_len)))

  (func $log (export "log") (param $in i32) (param $in_len i32) (result i32)
    (local $msg i32) (local $msg_len i32)
    (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4128) (i32.const 7))
    (local.set $msg_len)
    (local.set $msg)
    (if (i32.eqz (local.get $msg)) (then (return (i32.const 0))))
    (call $cortex_log (global.get $CORTEX_LOG_INFO) (local.get $msg) (local.get $msg_len))
    (call $cortex_result_raw (i32.const 4256) (i32.const 15)))
)
