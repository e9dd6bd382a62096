package cortex

import (
	"fmt"
	"unsafe"
)

// Level is the severity of a log line (the level argument of the host's cortex.log).
type Level uint32

const (
	LevelDebug   Level = 0
	LevelInfo    Level = 1
	LevelWarning Level = 2
	LevelError   Level = 3
)

// Log writes one line to the host's log: it becomes a structlog event "plugin.log" carrying
// the plugin's name, the level and msg. The host truncates each line to 4 KiB and drops lines
// once the call has logged limits.maxLogBytes (default 64 KiB) in all.
//
// Writes to os.Stdout and os.Stderr (fmt.Println, the log package) also reach the host's log,
// as plugin.log events with stream "stdout"/"stderr", within the same budget.
func Log(level Level, msg string) {
	hostLog(uint32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

// Logf is Log with fmt.Sprintf formatting.
func Logf(level Level, format string, args ...any) {
	Log(level, fmt.Sprintf(format, args...))
}

// Error reports that the current call failed with msg: whatever the capability then returns,
// the caller gets PluginError(msg). Only the first report of a call counts; the host truncates
// it to 4 KiB. A capability that calls Error should return 0 (Fail does both).
//
// Capabilities built on Handle or HandleJSON just return a non-nil error instead.
func Error(msg string) {
	hostError(unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

// Fail reports err (see Error) and returns 0, the null result pointer:
//
//	if bad { return cortex.Fail(errors.New("bad input")) }
func Fail(err error) uint32 {
	msg := "error"
	if err != nil {
		msg = err.Error()
	}
	Error(msg)
	return 0
}
