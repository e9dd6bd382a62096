;; An i64 load at 65532: its last 4 bytes are past the end of the 64 KiB memory.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $load_straddling_the_end (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.wrap_i64 (i64.load (i32.const 65532))))
)
