// Template Cortex-M startup: set TEMPLATE_NUM_IRQS to your part's interrupt count and install
// interrupt handlers by defining the weak names (startup_irq<n>_handler) in board.c.
// Reset enables the FPU (we build with -mfloat-abi=hard), copies .data, zeroes .bss, runs main()
// and passes its return value to board_exit().

#include <stdint.h>
#include <string.h>

#include "kws/board.h"

#define TEMPLATE_NUM_IRQS 8

extern uint32_t __data_load[];
extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];
extern uint32_t __stack_top[];

int main(void);

void startup_reset_handler(void);
void startup_default_handler(void);

#define STARTUP_HANDLER(name) void name(void) __attribute__((weak, alias("startup_default_handler")))

STARTUP_HANDLER(startup_nmi_handler);
STARTUP_HANDLER(startup_hardfault_handler);
STARTUP_HANDLER(startup_memmanage_handler);
STARTUP_HANDLER(startup_busfault_handler);
STARTUP_HANDLER(startup_usagefault_handler);
STARTUP_HANDLER(startup_svc_handler);
STARTUP_HANDLER(startup_debugmon_handler);
STARTUP_HANDLER(startup_pendsv_handler);
STARTUP_HANDLER(startup_systick_handler);
STARTUP_HANDLER(startup_irq0_handler);
STARTUP_HANDLER(startup_irq1_handler);
STARTUP_HANDLER(startup_irq2_handler);
STARTUP_HANDLER(startup_irq3_handler);
STARTUP_HANDLER(startup_irq4_handler);
STARTUP_HANDLER(startup_irq5_handler);
STARTUP_HANDLER(startup_irq6_handler);
STARTUP_HANDLER(startup_irq7_handler);

typedef void (*startup_handler)(void);

typedef struct {
    uint32_t *initial_sp;
    startup_handler handlers[15 + TEMPLATE_NUM_IRQS];
} startup_vector_table;

__attribute__((section(".vectors"), used)) const startup_vector_table startup_vectors = {
    __stack_top,
    {
        startup_reset_handler,
        startup_nmi_handler,
        startup_hardfault_handler,
        startup_memmanage_handler,
        startup_busfault_handler,
        startup_usagefault_handler,
        0, 0, 0, 0,  // reserved
        startup_svc_handler,
        startup_debugmon_handler,
        0,  // reserved
        startup_pendsv_handler,
        startup_systick_handler,
        startup_irq0_handler, startup_irq1_handler, startup_irq2_handler, startup_irq3_handler,
        startup_irq4_handler, startup_irq5_handler, startup_irq6_handler, startup_irq7_handler,
    },
};

#define STARTUP_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define STARTUP_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void startup_reset_handler(void)
{
    STARTUP_SCB_CPACR |= 0xFu << 20;  // CP10/CP11 full access: the FPU, before any FP instruction
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    STARTUP_SCB_VTOR = (uint32_t)(uintptr_t)&startup_vectors;

    memcpy(__data_start, __data_load, (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start));
    memset(__bss_start, 0, (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start));

    board_exit(main());
}

// A fault or an interrupt without a handler: stop here so a debugger shows where it happened.
void startup_default_handler(void)
{
    for (;;) {
    }
}
