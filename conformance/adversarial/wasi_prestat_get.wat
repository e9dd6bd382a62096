;; fd_prestat_get(3): how a WASI libc discovers preopened directories. Reports
;; "fd_prestat_get errno=N" (EBADF = 8: there is no preopen at all).
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "fd_prestat_get errno=")
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
    (local.set $end (call $utoa (call $prestat (i32.const 3) (i32.const 64)) (i32.const 221)))
    (call $error (i32.const 200) (i32.sub (local.get $end) (i32.const 200)))
    (i32.const 0))
)
