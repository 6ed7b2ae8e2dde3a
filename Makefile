# Shortcuts; the scripts under scripts/ do the work (and install what is
# missing on Debian).
.PHONY: run test build lint bench bench-scale clean
run:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
build:
	bash scripts/build.sh
lint:
	bash scripts/lint.sh
bench:
	bash bench/run.sh
bench-scale:
	bash bench/scale.sh
clean:
	rm -rf build
