;; A valid 2,002-byte JSON string "aaa...": its manifest caps output at 1,024 bytes.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 4096) (i32.const 2002))
    (i32.store8 (i32.const 4100) (i32.const 34))
    (memory.fill (i32.const 4101) (i32.const 97) (i32.const 2000))
    (i32.store8 (i32.const 6101) (i32.const 34))
    (i32.const 4096))
)
