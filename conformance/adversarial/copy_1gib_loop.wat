;; With 1 GiB of memory, memory.copy one half onto the other and back, forever.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $copy_halves_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $half i32)
    (local.set $half (i32.shl (memory.size) (i32.const 15)))
    (loop $again
      (memory.copy (i32.const 0) (local.get $half) (local.get $half))
      (memory.copy (local.get $half) (i32.const 0) (local.get $half))
      (br $again))
    (i32.const 0))
)
