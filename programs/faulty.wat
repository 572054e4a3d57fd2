;; Divides by zero: the trap ends this process alone.
(module
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "faulty: dividing by zero\n")   ;; 25
  (func $divide (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "_start")
    (drop (call $print (i32.const 0) (i32.const 25)))
    (drop (call $divide (i32.const 1) (i32.const 0)))))
