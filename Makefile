# The two commands a newcomer needs are in README.md: `go run ./cmd/sigil server`
# and `make test`. Everything else here is a convenience.

.PHONY: test server build bench fuzz

test:
	./scripts/test.sh

server:
	go run ./cmd/sigil server

build:
	go build -o bin/sigil ./cmd/sigil

bench:
	go run ./bench -duration 10s -conns 64
