;; fd_write(2) of 64 KiB without newlines, forever: only the deadline ends it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (memory.fill (i32.const 65536) (i32.const 122) (i32.const 65536))
    (i32.store (i32.const 32) (i32.const 65536))
    (i32.store (i32.const 36) (i32.const 65536))
    (loop $again
      (drop (call $fd_write (i32.const 2) (i32.const 32) (i32.const 1) (i32.const 64)))
      (br $again))
    (i32.const 0))
)
