# Build, install and check slicesync's three programs.
#
#   make install                      release build; programs to $(PREFIX)/bin, man pages to $(PREFIX)/share/man/man1
#   make install PREFIX=$$HOME/.local   somewhere else (DESTDIR is honoured for packaging)
#   make uninstall | make test | make demo | make bench
# The programs link the Swift runtime statically: they run on machines without a Swift toolchain, and
# start lighter (see Package.swift). The benchmarks and the demo build them the same way.
PREFIX ?= /usr/local
DESTDIR ?=
PROGRAMS := shash slicesync syncserver
SWIFTFLAGS := -c release --static-swift-stdlib
BIN := .build/release
MAN := .build/man

.PHONY: build man install uninstall test demo bench

build:
	for program in $(PROGRAMS) generate-manual; do swift build $(SWIFTFLAGS) --product $$program || exit 1; done

# Man pages come from each program's own --help text (swift-argument-parser's generate-manual).
man: build
	mkdir -p $(MAN)
	for program in $(PROGRAMS); do $(BIN)/generate-manual $(BIN)/$$program -o $(MAN) || exit 1; done

install: man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	for program in $(PROGRAMS); do \
	  install -m 755 $(BIN)/$$program $(DESTDIR)$(PREFIX)/bin/$$program && \
	  install -m 644 $(MAN)/$$program.1 $(DESTDIR)$(PREFIX)/share/man/man1/$$program.1 || exit 1; \
	done
	@echo "installed $(PROGRAMS) in $(DESTDIR)$(PREFIX)/bin (man pages in $(DESTDIR)$(PREFIX)/share/man/man1)"

uninstall:
	for program in $(PROGRAMS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$program $(DESTDIR)$(PREFIX)/share/man/man1/$$program.1; done

test:
	swift test

demo:
	bash scripts/demo.sh

bench:
	bash bench/run.sh
