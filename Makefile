# BytePiece for SQLite.
#   make          the loadable extension ./bytepiece.so (the published models of
#                 models/ built in), libsqlite3_bytepiece.a and libbytepiece.a
#   make test     C unit tests, host tests and the Tcl suite; ends with
#                 "N passed, N failed, N skipped"
#   make test-sanitize   the same under AddressSanitizer and UBSan
#   make test-tsan       the threaded tests under ThreadSanitizer
#   make lint     cppcheck and clang-tidy on src/ and ext/
#   make fuzz     each libFuzzer target for FUZZ_SECONDS (clang)
#   make bench    encoding throughput against SentencePiece; bp_export on 1,
#                 2 (4) threads
#   make bench-train   training time, memory and compression against spm_train
#   make demo     train on real text and print a report
#   make install  (PREFIX, DESTDIR) the extension, the static libraries, headers
#   make dist     a versioned source tarball; make distcheck builds and
#                 tests it in a scratch folder with no ../shared
#   make python   the Python wheel in dist/ (python/)
#   make npm      the npm package in dist/ (npm/)
#   make release  the prebuilt loadable and static archives in dist/, with
#                 SHA256SUMS

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# Hidden by default: the extension exports only its entry point
# (sqlite3_bytepiece_init, marked visible in ext/bytepiece.c).
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -ffp-contract=off $(WARNINGS) -Isrc $(CFLAGS)
LIBS = -lutf8proc -lz -lm -lpthread
SHARED = bytepiece.so
# The published models built into the extension (ext/builtin_models.c).
MODELS = $(wildcard models/*.value.z)
# And a version script as well, for what visibility does not cover.
ifeq ($(shell uname -s),Darwin)
EXPORTS = -Wl,-exported_symbol,_sqlite3_bytepiece_init
else
EXPORTS = -Wl,--version-script=ext/exports.map
endif
PYTHON ?= /usr/bin/python3
SHARED_DATA ?= ../shared

LIB_SOURCES = $(wildcard src/*.c)
EXT_SOURCES = $(wildcard ext/*.c)
HEADERS = $(wildcard src/*.h) $(wildcard ext/*.h)
BUILD = build

LIB_OBJECTS = $(LIB_SOURCES:src/%.c=$(BUILD)/src/%.o)
EXT_OBJECTS = $(EXT_SOURCES:ext/%.c=$(BUILD)/ext/%.o)

VERSION := $(shell sed -n 's/^\#define BP_VERSION "\(.*\)"/\1/p' src/bytepiece.h)
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR = $(DESTDIR)$(PREFIX)/lib
INCLUDEDIR = $(DESTDIR)$(PREFIX)/include

.PHONY: all test test-sanitize test-tsan lint format fuzz bench bench-train demo clean install uninstall dist \
  distcheck package-build python npm release

all: $(SHARED) $(BUILD)/libbytepiece.a $(BUILD)/libsqlite3_bytepiece.a

$(BUILD)/src/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/ext/%.o: ext/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/ext/builtin_models.o $(BUILD)/core/builtin_models.o: $(MODELS)

$(BUILD)/libbytepiece.a: $(LIB_OBJECTS)
	ar rcs $@ $^

# The extension for linking into a program (SQLITE_CORE): register it with
# sqlite3_auto_extension(sqlite3_bytepiece_init).
$(BUILD)/core/%.o: ext/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSQLITE_CORE -c $< -o $@

# The whole extension as one relocatable object whose hidden symbols are
# made local, so that only sqlite3_bytepiece_init is seen by the program it
# is linked into (which may well have a bp_encode of its own).
# libbytepiece_core.a keeps the objects as they are, for the test programs
# that call the library's functions besides the extension's.
$(BUILD)/libsqlite3_bytepiece.a: $(LIB_OBJECTS) $(EXT_SOURCES:ext/%.c=$(BUILD)/core/%.o)
	$(LD) -r -o $(BUILD)/sqlite3_bytepiece.o $^
	objcopy --localize-hidden $(BUILD)/sqlite3_bytepiece.o
	rm -f $@
	ar rcs $@ $(BUILD)/sqlite3_bytepiece.o

$(BUILD)/libbytepiece_core.a: $(LIB_OBJECTS) $(EXT_SOURCES:ext/%.c=$(BUILD)/core/%.o)
	ar rcs $@ $^

$(SHARED): $(LIB_OBJECTS) $(EXT_OBJECTS) ext/exports.map
	$(CC) -shared $(ALL_CFLAGS) $(EXPORTS) -o $@ $(LIB_OBJECTS) $(EXT_OBJECTS) $(LIBS)

$(BUILD)/unit_tests: tests/unit/unit_tests.c $(BUILD)/libbytepiece.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libbytepiece.a $(LIBS)

$(BUILD)/sql_interrupt_test: tests/unit/sql_interrupt_test.c
	$(CC) $(ALL_CFLAGS) -o $@ $< -lsqlite3 -lpthread

$(BUILD)/fault_test: tests/unit/fault_test.c $(BUILD)/libbytepiece_core.a
	$(CC) $(ALL_CFLAGS) -Iext -o $@ $< $(BUILD)/libbytepiece_core.a -lsqlite3 $(LIBS)

$(BUILD)/concurrency_test: tests/unit/concurrency_test.c $(BUILD)/libbytepiece_core.a
	$(CC) $(ALL_CFLAGS) -Iext -o $@ $< $(BUILD)/libbytepiece_core.a -lsqlite3 $(LIBS)

# libFuzzer targets (make fuzz builds them with clang in build-fuzz).
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libbytepiece_core.a
	$(CC) $(ALL_CFLAGS) $(FUZZ_LINK) -Iext -o $@ $< $(BUILD)/libbytepiece_core.a -lsqlite3 $(LIBS)

$(BUILD)/static_host: tests/hosts/static_host.c $(BUILD)/libsqlite3_bytepiece.a
	$(CC) $(ALL_CFLAGS) -Iext -o $@ $< $(BUILD)/libsqlite3_bytepiece.a -lsqlite3 $(LIBS)

$(BUILD)/bench_encode: tests/bench/bench_encode.c $(BUILD)/libbytepiece.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libbytepiece.a -lsqlite3 $(LIBS)

C_TESTS = $(BUILD)/unit_tests $(BUILD)/sql_interrupt_test $(BUILD)/fault_test \
  $(BUILD)/concurrency_test

test: all $(C_TESTS) $(BUILD)/static_host
	@tests/run $(BUILD) ./$(SHARED)

# Sanitizers: a separate build tree, the same tests but the hosts that load
# the extension as a library (tests/run reports them skipped). The extension
# is loaded into tclsh, so the ASan runtime is preloaded.
test-sanitize:
	$(MAKE) BUILD=build-sanitize SHARED=build-sanitize/bytepiece.so \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  build-sanitize/bytepiece.so $(C_TESTS:$(BUILD)/%=build-sanitize/%) build-sanitize/static_host
	BP_SKIP_HOSTS=1 ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  tests/run build-sanitize build-sanitize/bytepiece.so

# ThreadSanitizer: the concurrency test (readers and a writer on one
# database, shared compiled models) and the unit tests (threaded training),
# through tests/run, which totals both.
test-tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g -fsanitize=thread" \
	  build-tsan/concurrency_test build-tsan/unit_tests
	TSAN_OPTIONS="halt_on_error=1" BP_RUNNERS="unit concurrency" tests/run build-tsan none

# Static analysis, clean on src/ and ext/. cppcheck: warnings, performance,
# portability. clang-tidy: bugprone and the clang static analyzer, without
# style-only checks (swappable parameters, reserved names, narrowing and
# widening of sizes, memcpy of non-strings, Annex K). The analyzer's
# path-sensitive null, uninitialized-value and va_list checks are on: of
# their 21 known reports, 16 were resolved in code (the invariant made
# visible: a variable initialised, an early return on an impossible
# condition or a failed allocation) and 5 are suppressed in place with
# NOLINTNEXTLINE and the invariant they rely on. README: Reliability.
TIDY_CHECKS = -*,bugprone-*,clang-analyzer-*,-bugprone-easily-swappable-parameters,\
-bugprone-reserved-identifier,-bugprone-narrowing-conversions,\
-bugprone-implicit-widening-of-multiplication-result,-bugprone-not-null-terminated-result,\
-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling

# The C style is .clang-format's: `make format` applies it, and lint fails
# on any file that does not follow it.
FORMATTED = $(wildcard src/*.[ch] ext/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/hosts/*.c \
                       tests/bench/*.c)
format:
	clang-format -i $(FORMATTED)

lint:
	clang-format --dry-run --Werror $(FORMATTED)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
	  --inline-suppr -Isrc -Iext src ext
	clang-tidy --quiet --warnings-as-errors='*' -checks='$(TIDY_CHECKS)' $(LIB_SOURCES) $(EXT_SOURCES) \
	  -- -std=c11 -D_GNU_SOURCE -Isrc -Iext
	@echo "lint: clean"

# Fuzzing: each target for FUZZ_SECONDS from its committed seeds; the corpus
# grows in build-fuzz/corpus, crashes land in build-fuzz/crashes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_model fuzz_encode fuzz_decode fuzz_train fuzz_fts5 fuzz_store
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz FUZZ_LINK=-fsanitize=fuzzer \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  $(FUZZ_TARGETS:%=build-fuzz/%)
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: all $(BUILD)/bench_encode
	@SHARED_DATA=$(SHARED_DATA) PYTHON=$(PYTHON) tests/bench/bench.sh $(BUILD)/bench_encode ./$(SHARED)
	@SHARED_DATA=$(SHARED_DATA) PYTHON=$(PYTHON) tests/bench/bench_export.sh ./$(SHARED)

bench-train: all
	@SHARED_DATA=$(SHARED_DATA) PYTHON=$(PYTHON) tests/bench/bench_train.sh ./$(SHARED)

demo: all
	@SHARED_DATA=$(SHARED_DATA) sql/demo.sh ./$(SHARED)

install: all
	install -d $(LIBDIR) $(INCLUDEDIR)
	install -m 755 $(SHARED) $(LIBDIR)/bytepiece.so
	install -m 644 $(BUILD)/libbytepiece.a $(BUILD)/libsqlite3_bytepiece.a $(LIBDIR)/
	install -m 644 src/bytepiece.h ext/sqlite3_bytepiece.h $(INCLUDEDIR)/

uninstall:
	rm -f $(LIBDIR)/bytepiece.so $(LIBDIR)/libbytepiece.a $(LIBDIR)/libsqlite3_bytepiece.a \
	  $(INCLUDEDIR)/bytepiece.h $(INCLUDEDIR)/sqlite3_bytepiece.h

# The committed tree as bytepiece-sqlite-VERSION.tar.gz.
dist:
	git archive --format=tar.gz --prefix=bytepiece-sqlite-$(VERSION)/ \
	  -o bytepiece-sqlite-$(VERSION).tar.gz HEAD
	@echo bytepiece-sqlite-$(VERSION).tar.gz

# The source tarball as a user gets it: unpacked in a scratch folder, where
# ../shared does not exist, it must build and pass its own tests.
distcheck: dist
	@scratch=$$(mktemp -d) && \
	  tar -xzf bytepiece-sqlite-$(VERSION).tar.gz -C $$scratch && \
	  env -u SHARED_DATA $(MAKE) -C $$scratch/bytepiece-sqlite-$(VERSION) -j2 test; \
	  status=$$?; rm -rf $$scratch; exit $$status

# ---- Packages: the wheel (python/), the npm package (npm/) and the release
# archives, all in dist/, all from one build in build-package: optimised,
# utf8proc linked in statically with its symbols kept local
# (--exclude-libs), so the packaged bytepiece.so needs only glibc and zlib,
# and stripped as it is copied in. The version is BP_VERSION of
# src/bytepiece.h, as bp_version() reports it.
PACKAGE_BUILD = build-package
# LIBS with utf8proc's static archive in place of its shared library.
PACKAGE_LIBS = -Wl,--exclude-libs,ALL $(patsubst -lutf8proc,-l:libutf8proc.a,$(LIBS))
ARCH := $(shell uname -m)
NPM_CPU = $(if $(filter x86_64,$(ARCH)),x64,$(if $(filter aarch64,$(ARCH)),arm64,$(ARCH)))
LICENSE_FILES = $(wildcard LICENSE NOTICE)
RELEASE = bytepiece-sqlite-$(VERSION)

package-build:
	$(MAKE) BUILD=$(PACKAGE_BUILD) SHARED=$(PACKAGE_BUILD)/bytepiece.so CFLAGS=-O2 \
	  LIBS="$(PACKAGE_LIBS)" $(PACKAGE_BUILD)/bytepiece.so $(PACKAGE_BUILD)/libbytepiece.a \
	  $(PACKAGE_BUILD)/libsqlite3_bytepiece.a

python: package-build
	@mkdir -p dist $(PACKAGE_BUILD)/python
	rm -f dist/sqlite_bytepiece-*.whl
	strip --strip-unneeded -o $(PACKAGE_BUILD)/python/bytepiece.so $(PACKAGE_BUILD)/bytepiece.so
	$(PYTHON) python/build_wheel.py --version $(VERSION) --library $(PACKAGE_BUILD)/python/bytepiece.so \
	  --out dist $(LICENSE_FILES:%=--license %)

npm: package-build
	rm -rf $(PACKAGE_BUILD)/npm dist/sqlite-bytepiece-*.tgz
	mkdir -p $(PACKAGE_BUILD)/npm/lib dist
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@CPU@/$(NPM_CPU)/' npm/package.json.in >$(PACKAGE_BUILD)/npm/package.json
	cp npm/index.js npm/index.d.ts npm/README.md $(LICENSE_FILES) $(PACKAGE_BUILD)/npm/
	strip --strip-unneeded -o $(PACKAGE_BUILD)/npm/lib/bytepiece.so $(PACKAGE_BUILD)/bytepiece.so
	cd $(PACKAGE_BUILD)/npm && npm pack --silent --pack-destination $(CURDIR)/dist
	@ls dist/sqlite-bytepiece-$(VERSION).tgz

# dist/bytepiece-sqlite-VERSION-loadable-linux-ARCH.tar.gz: bytepiece.so;
# ...-static-linux-ARCH.tar.gz: libsqlite3_bytepiece.a (the extension, to
# register with sqlite3_auto_extension), libbytepiece.a (the tokenizer alone)
# and their headers; the names and the flat layout of sqlite-vec's releases.
release: package-build
	rm -rf $(PACKAGE_BUILD)/loadable $(PACKAGE_BUILD)/static dist/$(RELEASE)-*-linux-*.tar.gz dist/SHA256SUMS
	mkdir -p $(PACKAGE_BUILD)/loadable $(PACKAGE_BUILD)/static dist
	strip --strip-unneeded -o $(PACKAGE_BUILD)/loadable/bytepiece.so $(PACKAGE_BUILD)/bytepiece.so
	strip --strip-debug -o $(PACKAGE_BUILD)/static/libsqlite3_bytepiece.a $(PACKAGE_BUILD)/libsqlite3_bytepiece.a
	strip --strip-debug -o $(PACKAGE_BUILD)/static/libbytepiece.a $(PACKAGE_BUILD)/libbytepiece.a
	cp ext/sqlite3_bytepiece.h src/bytepiece.h $(PACKAGE_BUILD)/static/
	$(if $(LICENSE_FILES),cp $(LICENSE_FILES) $(PACKAGE_BUILD)/loadable/ && cp $(LICENSE_FILES) $(PACKAGE_BUILD)/static/)
	cd $(PACKAGE_BUILD)/loadable && tar --owner=0 --group=0 --numeric-owner --sort=name \
	  -czf $(CURDIR)/dist/$(RELEASE)-loadable-linux-$(ARCH).tar.gz *
	cd $(PACKAGE_BUILD)/static && tar --owner=0 --group=0 --numeric-owner --sort=name \
	  -czf $(CURDIR)/dist/$(RELEASE)-static-linux-$(ARCH).tar.gz *
	cd dist && sha256sum $(RELEASE)-loadable-linux-$(ARCH).tar.gz $(RELEASE)-static-linux-$(ARCH).tar.gz >SHA256SUMS
	@cat dist/SHA256SUMS

clean:
	rm -rf build build-sanitize build-tsan build-fuzz build-node build-package dist $(SHARED) \
	  bytepiece-sqlite-*.tar.gz
