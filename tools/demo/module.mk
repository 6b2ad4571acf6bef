# make demo: see tools/demo/demo.sh.
.PHONY: demo
demo: $(MEMSERVER_BIN) $(MSCTL_BIN)
	BUILD=$(BUILD) bash tools/demo/demo.sh
