;; Writes 10 MiB to stdout (160 fd_write calls of 64 KiB of "yyyy...\n" lines), adds up the
;; nwritten the host reports, and reports "wrote N bytes" through cortex.error. The host must
;; accept (and drop) what exceeds the log budget without buffering 10 MiB anywhere.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 200) "wrote ")
  (data (i32.const 300) " bytes")
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
    (local $i i32) (local $total i32) (local $end i32) (local $line i32)
    ;; 64 KiB at 65536: 1024 lines of 63 'y' and a newline
    (memory.fill (i32.const 65536) (i32.const 121) (i32.const 65536))
    (loop $nl
      (i32.store8 (i32.add (i32.const 65599) (i32.shl (local.get $line) (i32.const 6))) (i32.const 10))
      (local.set $line (i32.add (local.get $line) (i32.const 1)))
      (br_if $nl (i32.lt_u (local.get $line) (i32.const 1024))))
    (i32.store (i32.const 32) (i32.const 65536))  ;; iovec: buf, len
    (i32.store (i32.const 36) (i32.const 65536))
    (loop $again
      (i32.store (i32.const 64) (i32.const 0))
      (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 64)))
      (local.set $total (i32.add (local.get $total) (i32.load (i32.const 64))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 160))))
    (local.set $end (call $utoa (local.get $total) (i32.const 206)))
    (memory.copy (local.get $end) (i32.const 300) (i32.const 6))
    (call $error (i32.const 200) (i32.sub (i32.add (local.get $end) (i32.const 6)) (i32.const 200)))
    (i32.const 0))
)
