#!/bin/sh
set -eu

echo "building"
go build -o bin/app ./cmd/app
echo "done: bin/app"