;; fd_read(0) into a 64-byte buffer: reports "stdin errno=E nread=N". There is no stdin, so
;; nothing of the worker's own stdin can be read (0 bytes).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "stdin errno=")
  (data (i32.const 180) " nread=")
  ;; utoa(n, dst) writes n in decimal at dst and returns the end.
  (func $utoa (param $n i32) (param $dst i32) (result i32)
    (local $tmp i32) (local $len i32) (local $i i32)
    (local.set $tmp (local.get $n))
    (local.set $len (i32.const 1))
    (block $done
      (loop $count
        (br_if $done (i32.lt_u (local.get $tmp) (i32.const 10)))
        (local.set $tmp (i32.div_u (local.get $tmp) (i32.const 10)))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $count)))
    (local.set $i (local.get $len))
    (loop $write
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i))
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (local.get $i)))
    (i32.add (local.get $dst) (local.get $len)))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $end i32)
    (i32.store (i32.const 32) (i32.const 512))  ;; iovec: buf 512, len 64
    (i32.store (i32.const 36) (i32.const 64))
    (local.set $end (call $utoa
      (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 64)) (i32.const 212)))
    (memory.copy (local.get $end) (i32.const 180) (i32.const 7))
    (local.set $end (call $utoa (i32.load (i32.const 64)) (i32.add (local.get $end) (i32.const 7))))
    (call $error (i32.const 200) (i32.sub (local.get $end) (i32.const 200)))
    (i32.const 0))
)
