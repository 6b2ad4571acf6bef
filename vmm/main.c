/*
 * vmm: the legato KVM virtual machine monitor (see vmm/vmm.h and docs/vmm.md).
 * A thin main over libvmm.a.
 */
#include "vmm/vmm.h"

int main(int argc, char **argv)
{
	return vmm_main(argc, argv);
}
