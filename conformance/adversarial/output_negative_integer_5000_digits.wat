;; {"n": -999...9} with 5,000 digits, inside an object.
(module
  (memory (export "memory") 1)
  (data (i32.const 4100) "{\22n\22:-")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 4096) (i32.const 5006))
    (memory.fill (i32.const 4105) (i32.const 57) (i32.const 5000))  ;; '9' x 5000
    (i32.store8 (i32.const 9105) (i32.const 125))                    ;; '}'
    (i32.const 4096))
)
