;; call_ref through a null typed function reference (function-references proposal, which this
;; engine leaves enabled).
(module
  (type $f (func (result i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $call_null_ref (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call_ref $f (ref.null $f)))
)
