//go:build race

package audit

// cleanLogRecords is how many records TestVerifyMillionRecordLog writes.
// The race detector slows the writer and verifier about tenfold, so under
// -race the test writes 200,000 records; without it, the 1,000,000 the
// issue asks for.
const cleanLogRecords = 200_000
