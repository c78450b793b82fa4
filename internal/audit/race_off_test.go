//go:build !race

package audit

// cleanLogRecords is how many records TestVerifyMillionRecordLog writes
// (200,000 under -race: see race_on_test.go).
const cleanLogRecords = 1_000_000
