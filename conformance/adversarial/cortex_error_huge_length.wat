;; cortex.error(0, 0x7FFFFFFF): a 2 GiB message "starting" in a 64 KiB memory. The range is out of
;; bounds; a host that truncates the length to 4 KiB *before* checking reads 4 KiB instead.
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "leaked")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $error (i32.const 0) (i32.const 0x7FFFFFFF))
    (i32.const 0))
)
