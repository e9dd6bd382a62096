;; path_open("/etc/passwd") relative to fd 3, the first preopen a WASI libc would try. Nothing is
;; preopened, so the guest must get an errno (EBADF = 8); it reports it through cortex.error as
;; "path_open errno=8 fd=<opened fd or 0>". It asks for the fd_read right only, a request any real
;; preopen would grant.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "/etc/passwd")
  (data (i32.const 200) "path_open errno=")
  (data (i32.const 300) " fd=")
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
    (local $errno i32) (local $end i32)
    (local.set $errno
      (call $path_open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 11) (i32.const 0)
        (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
    (local.set $end (call $utoa (local.get $errno) (i32.const 216)))
    (memory.copy (local.get $end) (i32.const 300) (i32.const 4))
    (local.set $end (call $utoa (i32.load (i32.const 64)) (i32.add (local.get $end) (i32.const 4))))
    (call $error (i32.const 200) (i32.sub (local.get $end) (i32.const 200)))
    (i32.const 0))
)
