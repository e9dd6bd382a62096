;; R = -8, i.e. 0xFFFFFFF8 as an unsigned offset (a host reading it signed would read memory[-8:]).
(module
  (memory (export "memory") 1)
  (data (i32.const 65528) "\02\00\00\00{}")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const -8))
)
