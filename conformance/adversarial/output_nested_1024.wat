;; 1024 nested arrays [[[...]]]: one level more than the 1023 the result may nest.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $nested (param $depth i32) (result i32)
    (i32.store (i32.const 2048) (i32.mul (local.get $depth) (i32.const 2)))
    (memory.fill (i32.const 2052) (i32.const 91) (local.get $depth))  ;; '['
    (memory.fill (i32.add (i32.const 2052) (local.get $depth)) (i32.const 93) (local.get $depth))  ;; ']'
    (i32.const 2048))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $nested (i32.const 1024)))
)
