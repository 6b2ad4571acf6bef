# make demo: a stock Debian guest on disaggregated memory (tools/demo/demo.sh),
# inside an emulated KVM host when this machine has no hardware virtualization.
# make demo-memserver: the memory server alone, driven with msctl.
.PHONY: demo demo-memserver
demo: $(VMM_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent guest
	BUILD=$(BUILD) bash tools/demo/demo.sh

demo-memserver: $(MEMSERVER_BIN) $(MSCTL_BIN)
	BUILD=$(BUILD) bash tools/demo/memserver-demo.sh
