module cortexruntime.dev/cortex

go 1.24
