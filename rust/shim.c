// SPDX-License-Identifier: GPL-2.0
/*
 * cr.ko's C shim: the kernel state that Rust cannot reach through the bindings (static
 * inlines, macros, arch headers), behind small functions with plain C types. Policy lives in
 * Rust; these functions only read or apply one piece of state each. See shim.h.
 */
#include <linux/bvec.h>
#include <linux/capability.h>
#include <linux/cr_pages.h>
#include <linux/cred.h>
#include <linux/eventfd.h>
#include <linux/eventpoll.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/filelock.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/highmem.h>
#include <linux/hrtimer.h>
#include <linux/kdev_t.h>
#include <linux/major.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/ipc_namespace.h>
#include <linux/magic.h>
#include <linux/memfd.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/pipe_fs_i.h>
#include <linux/posix-timers.h>
#include <linux/ptrace.h>
#include <linux/regset.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/exec_state.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/shmem_fs.h>
#include <linux/signalfd.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/task_work.h>
#include <linux/time.h>
#include <linux/timerfd.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/utsname.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>
#include <asm/fsgsbase.h>
#include <asm/segment.h>
#include <asm/vdso.h>
#include <asm/vdso/vsyscall.h>
#include <uapi/linux/elf.h>

#include "shim.h"

MODULE_IMPORT_NS("CR");

static_assert(CR_VM_GROWSDOWN == VM_GROWSDOWN);
static_assert(CR_REF_ELSEWHERE == CR_PAGE_ELSEWHERE && CR_REF_GUARD == CR_PAGE_GUARD);
static_assert(CR_REF_PINNED == CR_PAGE_PINNED && CR_REF_UNCHANGED == CR_PAGE_UNCHANGED);
static_assert(CR_SCAN_ANON_ONLY == CR_WALK_ANON_ONLY && CR_SCAN_HARVEST == CR_WALK_HARVEST);
static_assert(sizeof(struct cr_page_ref) == sizeof(struct cr_page) &&
	      offsetof(struct cr_page_ref, page) == offsetof(struct cr_page, page) &&
	      offsetof(struct cr_page_ref, flags) == offsetof(struct cr_page, flags) &&
	      offsetof(struct cr_page_ref, run) == offsetof(struct cr_page, run));
static_assert(sizeof(struct cr_copies_ref) == sizeof(struct cr_copies) &&
	      offsetof(struct cr_copies_ref, count) == offsetof(struct cr_copies, count) &&
	      offsetof(struct cr_copies_ref, at) == offsetof(struct cr_copies, at));
static_assert(sizeof(struct cr_copied_page) == 16 &&
	      offsetof(struct cr_copied_page, frame) == 8);
static_assert(sizeof(struct cr_piece) == sizeof(struct kvec) &&
	      offsetof(struct cr_piece, len) == offsetof(struct kvec, iov_len));
/* Pages are read and written through the kernel's direct map. */
static_assert(!IS_ENABLED(CONFIG_HIGHMEM));
static_assert(CR_VM_STACK_INCOMPLETE_SETUP == VM_STACK_INCOMPLETE_SETUP);
static_assert(CR_TT_NONE == TT_NONE && CR_TT_NATIVE == TT_NATIVE);
static_assert(CR_TASK_NO_NEW_PRIVS == 1);
static_assert(sizeof(struct cr_task_info) == 112);
static_assert(sizeof(struct cr_creds_info) == 80);
static_assert(sizeof(struct cr_mm_info) == 12 * 8 + CR_AUXV_WORDS * 8 + 8);
static_assert(AT_VECTOR_SIZE <= CR_AUXV_WORDS);
static_assert(sizeof(kernel_siginfo_t) == CR_SIGINFO_LEN);
static_assert(sizeof(struct user_regs_struct) == CR_USER_REGS_LEN);
static_assert(sizeof(struct cr_vma_info) == 48);
static_assert(sizeof(struct cr_file_facts) == 64 + CR_NAME_LEN);
static_assert(sizeof(struct cr_pending_signal) == 56);
static_assert(sizeof(struct cr_restart_info) == 32);
static_assert(sizeof(struct cr_tree_info) == 88);
static_assert(sizeof(struct cr_kin) == 24);
/* cr_ids() fills pid, tgid, ppid, pgid and sid as one array. */
static_assert(offsetof(struct cr_task_info, sid) == offsetof(struct cr_task_info, pid) + 16);
static_assert(offsetof(struct cr_tree_info, sid) == offsetof(struct cr_tree_info, pid) + 16);
static_assert(sizeof(struct cr_pipe_info) == 32);
static_assert(sizeof(struct cr_lock_info) == 40);
static_assert(CR_ITIMER_REAL == ITIMER_REAL && CR_ITIMER_VIRTUAL == ITIMER_VIRTUAL &&
	      CR_ITIMER_PROF == ITIMER_PROF);
static_assert(sizeof(struct cr_event_info) == 56);
static_assert(sizeof(struct cr_epoll_item) == 32);
/* A signal mask is one word, as the EVENT record's. */
static_assert(_NSIG_WORDS == 1);
static_assert(EFD_NONBLOCK == O_NONBLOCK && TFD_NONBLOCK == O_NONBLOCK && SFD_NONBLOCK == O_NONBLOCK);
static_assert(sizeof(struct cr_shmem_info) == 56);
static_assert(CR_SHMEM_SEALS_KNOWN == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
				       F_SEAL_FUTURE_WRITE | F_SEAL_EXEC));

/* --- Tasks --------------------------------------------------------------------------------- */

struct task_struct *cr_get_task(pid_t vpid)
{
	struct task_struct *t;

	rcu_read_lock();
	t = pid_task(find_vpid(vpid), PIDTYPE_PID);
	if (t)
		get_task_struct(t);
	rcu_read_unlock();
	return t;
}

/* Whether the caller may attach to @t as ptrace would (which refuses non-dumpable targets). */
bool cr_may_attach(struct task_struct *t)
{
	return ptrace_may_access(t, PTRACE_MODE_ATTACH_REALCREDS);
}

/* Whether @t's IPC namespace has semaphore sets. */
static bool cr_sem_in_use(struct task_struct *t)
{
	bool used = false;

#ifdef CONFIG_SYSVIPC
	task_lock(t);
	if (t->nsproxy)
		used = t->nsproxy->ipc_ns->ids[0].in_use; /* IPC_SEM_IDS, ipc/util.h */
	task_unlock(t);
#endif
	return used;
}

/* What decides whether a live task can be checkpointed, as CR_TF_* bits; task.rs decides. */
u32 cr_task_facts(struct task_struct *t)
{
	u32 f = 0;

	if (t->flags & PF_KTHREAD)
		f |= CR_TF_KTHREAD;
	if (t->exit_state || (t->flags & PF_EXITING))
		f |= CR_TF_EXITING;
	if (t->frozen)
		f |= CR_TF_FROZEN;
	if (t->ptrace)
		f |= CR_TF_TRACED;
	if (test_tsk_thread_flag(t, TIF_ADDR32))
		f |= CR_TF_32BIT;
#ifdef CONFIG_SECCOMP
	if (t->seccomp.mode != SECCOMP_MODE_DISABLED)
		f |= CR_TF_SECCOMP;
#endif
	if (task_cred_xxx(t, user_ns) != current_user_ns())
		f |= CR_TF_OTHER_USERNS;
	task_lock(t);
	if (!t->nsproxy || t->nsproxy->mnt_ns != current->nsproxy->mnt_ns)
		f |= CR_TF_OTHER_MNTNS;
#ifdef CONFIG_TIME_NS
	/* Its clocks' offsets, or its future children's, would be lost. */
	if (t->nsproxy && (t->nsproxy->time_ns != current->nsproxy->time_ns ||
			   t->nsproxy->time_ns_for_children != current->nsproxy->time_ns_for_children))
		f |= CR_TF_OTHER_TIMENS;
#endif
	task_unlock(t);
	if (!hlist_empty(&t->signal->posix_timers) || !hlist_empty(&t->signal->ignored_posix_timers))
		f |= CR_TF_POSIX_TIMERS;
	if (test_tsk_restore_sigmask(t))
		f |= CR_TF_SAVED_SIGMASK;
	/*
	 * Threads share an undo list (CLONE_SYSVSEM) that stays empty while no semaphore exists:
	 * only a list in a namespace with semaphores may hold undo entries.
	 */
	if (t->sysvsem.undo_list && cr_sem_in_use(t))
		f |= CR_TF_SEM_UNDO;
	if (!t->mm)
		f |= CR_TF_NO_MM;
	else if (t->mm->ioctx_table)
		f |= CR_TF_AIO;
	return f;
}

/* The ids of @t (0 where @ns does not see them), in cr_task_info's and cr_tree_info's order. */
static void cr_ids(struct task_struct *t, struct pid_namespace *ns, u32 ids[5])
{
	rcu_read_lock();
	ids[0] = task_pid_nr_ns(t, ns);
	ids[1] = task_tgid_nr_ns(t, ns);
	ids[2] = task_tgid_nr_ns(rcu_dereference(t->real_parent), ns);
	ids[3] = task_pgrp_nr_ns(t, ns);
	ids[4] = task_session_nr_ns(t, ns);
	rcu_read_unlock();
}

/* @t's scalars, with its pids as @ns sees them. */
void cr_task_info(struct task_struct *t, struct pid_namespace *ns, struct cr_task_info *out)
{
	memset(out, 0, sizeof(*out));
	cr_ids(t, ns, &out->pid);
	out->personality = t->personality;
	out->exit_signal = t->exit_signal;
	out->pdeath_signal = t->pdeath_signal;
	out->clear_child_tid = (unsigned long)t->clear_child_tid;
#ifdef CONFIG_FUTEX
	out->robust_list = (unsigned long)t->futex.robust_list;
	/* set_robust_list() accepts only this length: a pointer, a long and a pointer. */
	out->robust_list_len = t->futex.robust_list ? 3 * sizeof(long) : 0;
#endif
	out->sas_ss_sp = t->sas_ss_sp;
	out->sas_ss_size = t->sas_ss_size;
	out->sas_ss_flags = t->sas_ss_flags;
	out->blocked = t->blocked.sig[0];
	if (task_no_new_privs(t))
		out->flags |= CR_TASK_NO_NEW_PRIVS;
	rcu_read_lock();
	out->dumpable = READ_ONCE(rcu_dereference(t->exec_state)->dumpable);
	rcu_read_unlock();
	get_task_comm(out->comm, t);
}

/* Applies what the TASK record says to the calling task. */
void cr_set_task_info(const struct cr_task_info *in)
{
	struct task_struct *t = current;
	char comm[CR_COMM_LEN];

	t->personality = in->personality;
	t->pdeath_signal = in->pdeath_signal;
	t->clear_child_tid = (int __user *)(unsigned long)in->clear_child_tid;
#ifdef CONFIG_FUTEX
	t->futex.robust_list = (struct robust_list_head __user *)(unsigned long)in->robust_list;
#endif
	t->sas_ss_sp = in->sas_ss_sp;
	t->sas_ss_size = in->sas_ss_size;
	t->sas_ss_flags = in->sas_ss_flags;
	memcpy(comm, in->comm, CR_COMM_LEN);
	comm[CR_COMM_LEN - 1] = 0;
	task_lock(t);
	strscpy_pad(t->comm, comm, sizeof(t->comm));
	task_unlock(t);
}

/*
 * Applies what a change of credentials resets (commit_creds() clears the parent-death signal
 * and makes the address space dumpable as suid_dumpable says): called after cr_set_creds().
 * The threads of an address space share its exec_state, and each sets the same value.
 */
void cr_set_after_creds(const struct cr_task_info *in)
{
	struct task_exec_state *exec_state = rcu_dereference_protected(current->exec_state, true);

	current->pdeath_signal = in->pdeath_signal;
	/* mm-less tasks share init_task's exec_state: a restored task always has an mm. */
	if (in->dumpable <= TASK_DUMPABLE_ROOT && current->mm)
		WRITE_ONCE(exec_state->dumpable, in->dumpable);
	if (in->flags & CR_TASK_NO_NEW_PRIVS)
		task_set_no_new_privs(current);
}

int cr_set_blocked(u64 blocked)
{
	sigset_t set;

	siginitset(&set, blocked & ~(sigmask(SIGKILL) | sigmask(SIGSTOP)));
	return sigprocmask(SIG_SETMASK, &set, NULL);
}

/* --- Credentials ------------------------------------------------------------------------- */

int cr_creds_info(struct task_struct *t, struct cr_creds_info *out, u32 *groups, u32 max_groups)
{
	const struct cred *c = get_task_cred(t);
	struct user_namespace *ns = current_user_ns();
	u32 i;

	out->uid = from_kuid_munged(ns, c->uid);
	out->euid = from_kuid_munged(ns, c->euid);
	out->suid = from_kuid_munged(ns, c->suid);
	out->fsuid = from_kuid_munged(ns, c->fsuid);
	out->gid = from_kgid_munged(ns, c->gid);
	out->egid = from_kgid_munged(ns, c->egid);
	out->sgid = from_kgid_munged(ns, c->sgid);
	out->fsgid = from_kgid_munged(ns, c->fsgid);
	out->securebits = c->securebits;
	out->cap_inheritable = c->cap_inheritable.val;
	out->cap_permitted = c->cap_permitted.val;
	out->cap_effective = c->cap_effective.val;
	out->cap_bset = c->cap_bset.val;
	out->cap_ambient = c->cap_ambient.val;
	out->ngroups = c->group_info->ngroups;
	if (out->ngroups > max_groups) {
		put_cred(c);
		return -E2BIG;
	}
	for (i = 0; i < out->ngroups; i++)
		groups[i] = from_kgid_munged(ns, c->group_info->gid[i]);
	put_cred(c);
	return 0;
}

/*
 * Gives the calling task the checkpointed credentials. The caller of restart holds
 * CAP_SYS_ADMIN (checked on entry); the new capability sets must still lie within its own
 * permitted and bounding sets, so an image cannot raise privilege beyond the restarter's.
 */
int cr_set_creds(const struct cr_creds_info *in, const u32 *groups)
{
	struct user_namespace *ns = current_user_ns();
	struct group_info *gi;
	struct cred *new;
	u32 i;

#define CR_KUID(v) make_kuid(ns, v)
#define CR_KGID(v) make_kgid(ns, v)
	new = prepare_creds();
	if (!new)
		return -ENOMEM;
	new->uid = CR_KUID(in->uid);
	new->euid = CR_KUID(in->euid);
	new->suid = CR_KUID(in->suid);
	new->fsuid = CR_KUID(in->fsuid);
	new->gid = CR_KGID(in->gid);
	new->egid = CR_KGID(in->egid);
	new->sgid = CR_KGID(in->sgid);
	new->fsgid = CR_KGID(in->fsgid);
#undef CR_KUID
#undef CR_KGID
	if (!uid_valid(new->uid) || !uid_valid(new->euid) || !uid_valid(new->suid) ||
	    !uid_valid(new->fsuid) || !gid_valid(new->gid) || !gid_valid(new->egid) ||
	    !gid_valid(new->sgid) || !gid_valid(new->fsgid))
		goto inval;
	if ((in->cap_permitted & ~current_cred()->cap_permitted.val) ||
	    (in->cap_bset & ~current_cred()->cap_bset.val) ||
	    (in->cap_effective & ~in->cap_permitted) ||
	    (in->cap_ambient & ~(in->cap_permitted & in->cap_inheritable)))
		goto perm;
	new->cap_inheritable.val = in->cap_inheritable;
	new->cap_permitted.val = in->cap_permitted;
	new->cap_effective.val = in->cap_effective;
	new->cap_bset.val = in->cap_bset;
	new->cap_ambient.val = in->cap_ambient;
	new->securebits = in->securebits;

	gi = groups_alloc(in->ngroups);
	if (!gi) {
		abort_creds(new);
		return -ENOMEM;
	}
	for (i = 0; i < in->ngroups; i++) {
		gi->gid[i] = make_kgid(ns, groups[i]);
		if (!gid_valid(gi->gid[i])) {
			put_group_info(gi);
			goto inval;
		}
	}
	groups_sort(gi);
	set_groups(new, gi);
	put_group_info(gi);
	return commit_creds(new);
inval:
	abort_creds(new);
	return -EINVAL;
perm:
	abort_creds(new);
	return -EPERM;
}

/* --- Resource limits and timers ------------------------------------------------------------ */

void cr_get_rlimits(struct task_struct *t, u64 *out, u32 count)
{
	u32 i;

	task_lock(t->group_leader);
	for (i = 0; i < count && i < RLIM_NLIMITS; i++) {
		out[2 * i] = t->signal->rlim[i].rlim_cur;
		out[2 * i + 1] = t->signal->rlim[i].rlim_max;
	}
	task_unlock(t->group_leader);
}

int cr_set_rlimit(u32 resource, u64 cur, u64 max)
{
	struct rlimit r = { .rlim_cur = cur, .rlim_max = max };

	if (resource >= RLIM_NLIMITS || cur > max)
		return -EINVAL;
	return do_prlimit(current, resource, &r, NULL);
}

static void cr_get_itimer_real(struct signal_struct *sig, u64 *value_ns, u64 *interval_ns)
{
	ktime_t rem = 0;

	if (hrtimer_active(&sig->real_timer)) {
		rem = __hrtimer_get_remaining(&sig->real_timer, false);
		/* An expired but not yet handled timer fires "now", as getitimer reports. */
		if (rem <= 0)
			rem = NSEC_PER_USEC;
	}
	*interval_ns = ktime_to_ns(sig->it_real_incr);
	*value_ns = ktime_to_ns(rem);
}

/*
 * A CPU-time interval timer's time left and interval, as getitimer() computes them: against
 * the process's CPU time, which the thread group's cputimer keeps while such a timer is armed.
 */
static void cr_get_itimer_cpu(struct signal_struct *sig, int clock, u64 *value_ns,
			      u64 *interval_ns)
{
	struct cpu_itimer *it = &sig->it[clock];
	u64 value = it->expires;

	if (value) {
		struct task_cputime_atomic *times = &sig->cputimer.cputime_atomic;
		u64 now = atomic64_read(&times->utime);

		if (clock == CPUCLOCK_PROF)
			now += atomic64_read(&times->stime);
		/* One that is due but not yet handled fires in a tick, as getitimer reports. */
		value = value > now ? value - now : TICK_NSEC;
	}
	*value_ns = value;
	*interval_ns = it->incr;
}

/* Interval timer @which (CR_ITIMER_*) of @t: its time left (0: disarmed) and its interval. */
void cr_get_itimer(struct task_struct *t, u32 which, u64 *value_ns, u64 *interval_ns)
{
	struct signal_struct *sig = t->signal;

	*value_ns = 0;
	*interval_ns = 0;
	spin_lock_irq(&t->sighand->siglock);
	if (which == CR_ITIMER_REAL)
		cr_get_itimer_real(sig, value_ns, interval_ns);
	else if (which == CR_ITIMER_VIRTUAL)
		cr_get_itimer_cpu(sig, CPUCLOCK_VIRT, value_ns, interval_ns);
	else if (which == CR_ITIMER_PROF)
		cr_get_itimer_cpu(sig, CPUCLOCK_PROF, value_ns, interval_ns);
	spin_unlock_irq(&t->sighand->siglock);
}

/* Arms interval timer @which of the calling process, as setitimer() does. */
int cr_set_itimer(u32 which, u64 value_ns, u64 interval_ns)
{
	struct itimerspec64 it = {
		.it_value = ns_to_timespec64(value_ns),
		.it_interval = ns_to_timespec64(interval_ns),
	};

	return do_setitimer(which, &it, NULL);
}

/* --- Signals ------------------------------------------------------------------------------- */

/* Copies the 64 dispositions as {handler, flags, restorer, mask} quadruples. */
void cr_get_sigactions(struct task_struct *t, u64 *out)
{
	int i;

	spin_lock_irq(&t->sighand->siglock);
	for (i = 0; i < _NSIG; i++) {
		const struct k_sigaction *k = &t->sighand->action[i];

		out[4 * i] = (unsigned long)k->sa.sa_handler;
		out[4 * i + 1] = k->sa.sa_flags;
		out[4 * i + 2] = (unsigned long)k->sa.sa_restorer;
		out[4 * i + 3] = k->sa.sa_mask.sig[0];
	}
	spin_unlock_irq(&t->sighand->siglock);
}

int cr_set_sigaction(int sig, const u64 *in)
{
	struct k_sigaction k = {};

	k.sa.sa_handler = (__sighandler_t)(unsigned long)in[0];
	k.sa.sa_flags = in[1];
	k.sa.sa_restorer = (__sigrestore_t)(unsigned long)in[2];
	siginitset(&k.sa.sa_mask, in[3]);
	return do_sigaction(sig, &k, NULL);
}

/*
 * Copies up to @max queued signals of one queue. A pending bit without a queue entry (the
 * kernel could not allocate one) is reported with a minimal SI_KERNEL siginfo. Returns the
 * number found, which may exceed @max.
 */
u32 cr_get_pending(struct task_struct *t, bool shared, struct cr_pending_signal *out, u32 max)
{
	struct sigpending *p = shared ? &t->signal->shared_pending : &t->pending;
	struct sigqueue *q;
	u64 queued = 0;
	u32 n = 0;
	int sig;

	spin_lock_irq(&t->sighand->siglock);
	list_for_each_entry(q, &p->list, list) {
		if (n < max) {
			out[n].signo = q->info.si_signo;
			out[n].reserved = 0;
			memcpy(out[n].info, &q->info, CR_SIGINFO_LEN);
		}
		queued |= 1ULL << (q->info.si_signo - 1);
		n++;
	}
	for (sig = 1; sig <= _NSIG; sig++) {
		kernel_siginfo_t info = {};

		if (!sigismember(&p->signal, sig) || (queued & (1ULL << (sig - 1))))
			continue;
		if (n < max) {
			info.si_signo = sig;
			info.si_code = SI_KERNEL;
			out[n].signo = sig;
			out[n].reserved = 0;
			memcpy(out[n].info, &info, CR_SIGINFO_LEN);
		}
		n++;
	}
	spin_unlock_irq(&t->sighand->siglock);
	return n;
}

/* Discards the signals in @mask (bit n-1 for signal n) pending for the caller or its group. */
void cr_discard_signals(u64 mask)
{
	sigset_t others;
	kernel_siginfo_t info;
	enum pid_type type;

	/* A SIGKILL or SIGSTOP sent to the restoring task is never the restore's own. */
	siginitset(&others, ~(mask & ~(sigmask(SIGKILL) | sigmask(SIGSTOP))));
	spin_lock_irq(&current->sighand->siglock);
	while (dequeue_signal(&others, &info, &type) > 0)
		;
	spin_unlock_irq(&current->sighand->siglock);
}

int cr_queue_signal(u32 signo, const u8 *info_bytes, bool shared)
{
	kernel_siginfo_t info;

	if (signo < 1 || signo > _NSIG || signo == SIGKILL || signo == SIGSTOP)
		return -EINVAL;
	memcpy(&info, info_bytes, sizeof(info));
	if (info.si_signo != signo)
		return -EINVAL;
	return do_send_sig_info(signo, &info, current, shared ? PIDTYPE_TGID : PIDTYPE_PID);
}

/* --- Registers, FPU, restart blocks ----------------------------------------------------------- */

static const struct user_regset *cr_regset(struct task_struct *t, unsigned int note)
{
	const struct user_regset_view *view = task_user_regset_view(t);
	unsigned int i;

	for (i = 0; i < view->n; i++)
		if (view->regsets[i].core_note_type == note)
			return &view->regsets[i];
	return NULL;
}

int cr_get_regs(struct task_struct *t, void *out)
{
	const struct user_regset *r = cr_regset(t, NT_PRSTATUS);
	int ret;

	if (!r)
		return -ENODEV;
	ret = regset_get(t, r, CR_USER_REGS_LEN, out);
	return ret < 0 ? ret : 0;
}

u32 cr_xstate_size(void)
{
	const struct user_regset *r = cr_regset(current, NT_X86_XSTATE);

	return r ? r->n * r->size : 0;
}

u64 cr_xfeatures(void)
{
	return cpu_feature_enabled(X86_FEATURE_XSAVE) ? xgetbv(XCR_XFEATURE_ENABLED_MASK) : 0;
}

int cr_get_xstate(struct task_struct *t, void *out, u32 size)
{
	const struct user_regset *r = cr_regset(t, NT_X86_XSTATE);
	int ret;

	if (!r || size != r->n * r->size)
		return -ENODEV;
	ret = regset_get(t, r, size, out);
	return ret < 0 ? ret : 0;
}

int cr_set_xstate(const void *in, u32 size)
{
	return fpu_restore_current_uabi(in, size);
}

static ktime_t cr_clock_now(clockid_t clock)
{
	switch (clock) {
	case CLOCK_MONOTONIC:
		return ktime_get();
	case CLOCK_REALTIME:
		return ktime_get_real();
	case CLOCK_BOOTTIME:
		return ktime_get_boottime();
	case CLOCK_TAI:
		return ktime_get_clocktai();
	default:
		return -1;
	}
}

/*
 * Describes @t's restart block, which matters only while its interrupted system call returns
 * -ERESTART_RESTARTBLOCK; -EOPNOTSUPP for one cr cannot recreate.
 */
int cr_get_restart(struct task_struct *t, struct cr_restart_info *out)
{
	struct restart_block *rb = &t->restart_block;
	ktime_t now;

	memset(out, 0, sizeof(*out));
	if (task_pt_regs(t)->ax != (unsigned long)-ERESTART_RESTARTBLOCK)
		return 0;
	if (rb->fn != hrtimer_nanosleep_restart)
		return -EOPNOTSUPP;
	now = cr_clock_now(rb->nanosleep.clockid);
	if (now < 0)
		return -EOPNOTSUPP;
	out->kind = 1;
	out->clockid = rb->nanosleep.clockid;
	out->type = rb->nanosleep.type;
	out->rmtp = (unsigned long)rb->nanosleep.rmtp;
	out->remaining_ns = rb->nanosleep.expires > now ? rb->nanosleep.expires - now : 0;
	return 0;
}

static void cr_set_restart(const struct cr_restart_info *in)
{
	struct restart_block *rb = &current->restart_block;

	if (in->kind != 1)
		return;
	rb->nanosleep.clockid = in->clockid;
	rb->nanosleep.type = in->type;
	rb->nanosleep.rmtp = (struct __kernel_timespec __user *)(unsigned long)in->rmtp;
	rb->nanosleep.expires = cr_clock_now(in->clockid) + in->remaining_ns;
	rb->fn = hrtimer_nanosleep_restart;
}

struct cr_regs_work {
	struct callback_head head;
	struct cr_restart_info restart;
	struct user_regs_struct regs;
};

/* The flags user space may set, as ptrace's putreg allows. */
#define CR_USER_FLAGS                                                                       \
	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |  \
	 X86_EFLAGS_TF | X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_RF | X86_EFLAGS_AC |  \
	 X86_EFLAGS_NT)

/* What user segment state looks like here: the flat selectors, and where user space ends. */
void cr_user_segments(u64 *cs, u64 *ss, u64 *user_top)
{
	*cs = __USER_CS;
	*ss = __USER_DS;
	*user_top = TASK_SIZE_MAX;
}

/*
 * ptrace's regset setters refuse the current task, so the restored task writes its own
 * pt_regs, with the checks putreg() makes, and loads its FS base as arch_prctl(ARCH_SET_FS).
 */
static void cr_set_user_regs(const struct user_regs_struct *u)
{
	struct pt_regs *regs = current_pt_regs();

	regs->r15 = u->r15;
	regs->r14 = u->r14;
	regs->r13 = u->r13;
	regs->r12 = u->r12;
	regs->bp = u->bp;
	regs->bx = u->bx;
	regs->r11 = u->r11;
	regs->r10 = u->r10;
	regs->r9 = u->r9;
	regs->r8 = u->r8;
	regs->ax = u->ax;
	regs->cx = u->cx;
	regs->dx = u->dx;
	regs->si = u->si;
	regs->di = u->di;
	regs->orig_ax = u->orig_ax;
	regs->ip = u->ip;
	regs->sp = u->sp;
	regs->flags = (regs->flags & ~CR_USER_FLAGS) | (u->flags & CR_USER_FLAGS);

	preempt_disable();
	loadsegment(fs, 0);
	x86_fsbase_write_cpu(u->fs_base);
	current->thread.fsindex = 0;
	current->thread.fsbase = u->fs_base;
	preempt_enable();
}

/*
 * Runs on the restored task's way back to user space, after the ioctl's return value was
 * stored and before any signal is handled, so the registers (return value, orig_ax and the
 * syscall-restart state included) are exactly the checkpointed ones and the kernel's own
 * signal and restart logic then runs on them.
 */
static void cr_regs_work_fn(struct callback_head *head)
{
	struct cr_regs_work *w = container_of(head, struct cr_regs_work, head);

	cr_set_user_regs(&w->regs);
	cr_set_restart(&w->restart);
	kfree(w);
	module_put(THIS_MODULE);
}

/*
 * Allocates the task work that installs @regs (which regs.rs checked) on the way out, so that
 * the installation itself (cr_install_regs) cannot fail for lack of memory.
 */
void *cr_prepare_regs(const void *regs, const struct cr_restart_info *restart)
{
	struct cr_regs_work *w = kmalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	memcpy(&w->regs, regs, CR_USER_REGS_LEN);
	w->restart = *restart;
	init_task_work(&w->head, cr_regs_work_fn);
	return w;
}

void cr_free_regs(void *work)
{
	kfree(work);
}

/* Queues the prepared work on the calling task; it owns @work from here on. */
int cr_install_regs(void *work)
{
	struct cr_regs_work *w = work;
	int ret;

	__module_get(THIS_MODULE);
	ret = task_work_add(current, &w->head, TWA_SIGNAL);
	if (ret) {
		module_put(THIS_MODULE);
		kfree(w);
	}
	return ret;
}

/* --- Memory ---------------------------------------------------------------------------------- */

void cr_mm_info(struct mm_struct *mm, struct cr_mm_info *out)
{
	memset(out, 0, sizeof(*out));
	mmap_read_lock(mm);
	out->start_code = mm->start_code;
	out->end_code = mm->end_code;
	out->start_data = mm->start_data;
	out->end_data = mm->end_data;
	out->start_brk = mm->start_brk;
	out->brk = mm->brk;
	out->start_stack = mm->start_stack;
	spin_lock(&mm->arg_lock);
	out->arg_start = mm->arg_start;
	out->arg_end = mm->arg_end;
	out->env_start = mm->env_start;
	out->env_end = mm->env_end;
	spin_unlock(&mm->arg_lock);
	out->vdso = (unsigned long)mm->context.vdso;
	memcpy(out->auxv, mm->saved_auxv, sizeof(mm->saved_auxv));
	out->auxv_words = AT_VECTOR_SIZE;
	mmap_read_unlock(mm);
}

/* A reference to @mm's executable, or NULL. */
struct file *cr_mm_exe_file(struct mm_struct *mm)
{
	struct file *exe;

	rcu_read_lock();
	exe = get_file_rcu(&mm->exe_file);
	rcu_read_unlock();
	return exe;
}

/*
 * Describes the first VMA of @mm at or after @addr: 1 with @out filled (and its file referenced),
 * 0 when there is none. mm.rs decides what it is and whether it can be recreated.
 */
int cr_vma_next(struct mm_struct *mm, u64 addr, struct cr_vma_info *out)
{
	struct vm_area_struct *vma;
	const char *name = NULL;

	memset(out, 0, sizeof(*out));
	mmap_read_lock(mm);
	vma = find_vma(mm, addr);
	if (!vma) {
		mmap_read_unlock(mm);
		return 0;
	}
	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->vm_flags = vma->vm_flags;
	out->pgoff = vma->vm_pgoff;
	if (vma->vm_ops && vma->vm_ops->name)
		name = vma->vm_ops->name(vma);
	if (vma->vm_start == (unsigned long)mm->context.vdso)
		out->facts |= CR_VF_VDSO;
	if (name && (!strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]")))
		out->facts |= CR_VF_VVAR;
	if (vma_is_anonymous(vma))
		out->facts |= CR_VF_ANON;
	if (vma->vm_file)
		out->file = get_file(vma->vm_file);
	mmap_read_unlock(mm);
	return 1;
}

u64 cr_mm_resident_private(struct mm_struct *mm)
{
	return (get_mm_counter(mm, MM_ANONPAGES) + get_mm_counter(mm, MM_SHMEMPAGES)) << PAGE_SHIFT;
}

long cr_mm_walk_pages(struct mm_struct *mm, u64 *cursor, u64 end, u32 flags,
		      struct cr_copies_ref *copies, struct cr_page_ref *out, long max)
{
	unsigned long at = *cursor;
	long n = cr_walk_pages(mm, &at, end, flags, (struct cr_copies *)copies,
			       (struct cr_page *)out, max);

	*cursor = at;
	return n;
}

/*
 * A page the walk found elsewhere (swapped out, migrating): faulted in as a core dump would,
 * so that what the process never touched stays untouched. *out is NULL if nothing is there.
 */
int cr_mm_fault_in(struct mm_struct *mm, u64 addr, struct page **out)
{
	long got;

	*out = NULL;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	got = get_user_pages_remote(mm, addr, 1, FOLL_FORCE | FOLL_DUMP, out, NULL);
	mmap_read_unlock(mm);
	if (got == -EFAULT) {
		/* FOLL_DUMP: a hole, or the zero page. */
		*out = NULL;
		return 0;
	}
	return got < 0 ? got : 0;
}

void cr_put_page(struct page *page)
{
	put_page(page);
}

const void *cr_page_address(struct page *page)
{
	return page_address(page);
}

/*
 * Copies a page that its task may be writing meanwhile (a thawed checkpoint's rounds): a copy
 * torn by a write is harmless, since the write leaves the page dirty for the next round.
 */
void cr_copy_running_page(void *dst, struct page *page)
{
	memcpy(dst, page_address(page), PAGE_SIZE);
}

/*
 * The pages of a restoring task's @mm at [addr, addr + n pages), made present and writable
 * (breaking COW, whatever the protection) and referenced, to be filled through the direct map:
 * by the task itself, or by a worker on another CPU while the task fills those made before.
 */
long cr_mm_own_pages(struct mm_struct *mm, u64 addr, u32 n, struct page **out)
{
	int locked = 1;
	long got;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	got = get_user_pages_remote(mm, addr, n, FOLL_WRITE | FOLL_FORCE, out, &locked);
	if (locked)
		mmap_read_unlock(mm);
	return got;
}

/* Removes every mapping of the calling task: the first step of replacing its address space. */
int cr_unmap_all(void)
{
	struct mm_struct *mm = current->mm;

	for (;;) {
		struct vm_area_struct *vma;
		unsigned long start, len;
		int ret;

		mmap_read_lock(mm);
		vma = find_vma(mm, 0);
		if (!vma) {
			mmap_read_unlock(mm);
			return 0;
		}
		start = vma->vm_start;
		len = vma->vm_end - vma->vm_start;
		mmap_read_unlock(mm);
		ret = vm_munmap(start, len);
		if (ret)
			return ret;
	}
}

/* The madvise() hints an area can carry, each with the advice that sets it. */
static const struct {
	vm_flags_t flag;
	int advice;
} cr_hints[] = {
	{ VM_DONTCOPY, MADV_DONTFORK },
	{ VM_DONTDUMP, MADV_DONTDUMP },
	{ VM_WIPEONFORK, MADV_WIPEONFORK },
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	{ VM_HUGEPAGE, MADV_HUGEPAGE },
	{ VM_NOHUGEPAGE, MADV_NOHUGEPAGE },
#endif
#ifdef CONFIG_KSM
	{ VM_MERGEABLE, MADV_MERGEABLE },
#endif
};

/*
 * Recreates one area at exactly [start, end), with the madvise() hints of @vm_flags; an area
 * that cannot get them all is unmapped again.
 */
int cr_map(struct file *file, u64 start, u64 end, u64 vm_flags, u64 pgoff)
{
	unsigned long prot = 0, flags = MAP_FIXED_NOREPLACE, ret;
	size_t i;

	if (vm_flags & VM_READ)
		prot |= PROT_READ;
	if (vm_flags & VM_WRITE)
		prot |= PROT_WRITE;
	if (vm_flags & VM_EXEC)
		prot |= PROT_EXEC;
	if (!file)
		flags |= MAP_ANONYMOUS;
	flags |= (file && (vm_flags & VM_MAYSHARE)) ? MAP_SHARED : MAP_PRIVATE;
	if (vm_flags & VM_GROWSDOWN)
		flags |= MAP_GROWSDOWN;
	if (vm_flags & VM_NORESERVE)
		flags |= MAP_NORESERVE;
	if (start >= end || (start | end) & ~PAGE_MASK || end > TASK_SIZE_MAX)
		return -EINVAL;
	if (file && pgoff > (ULONG_MAX >> PAGE_SHIFT))
		return -EINVAL;
	ret = vm_mmap(file, start, end - start, prot, flags, file ? pgoff << PAGE_SHIFT : 0);
	if (IS_ERR_VALUE(ret))
		return ret;
	if (ret != start) {
		vm_munmap(ret, end - start);
		return -EEXIST;
	}
	for (i = 0; i < ARRAY_SIZE(cr_hints); i++) {
		int err;

		if (!(vm_flags & cr_hints[i].flag))
			continue;
		err = do_madvise(current->mm, start, end - start, cr_hints[i].advice);
		if (err) {
			vm_munmap(start, end - start);
			return err;
		}
	}
	return 0;
}

/* Maps the vDSO (and its data pages before it) so that its text starts at @text_start. */
int cr_map_vdso(u64 text_start)
{
	int ret;

	if (text_start < __VDSO_PAGES * PAGE_SIZE || text_start & ~PAGE_MASK)
		return -EINVAL;
	ret = map_vdso_once(&vdso64_image, text_start - __VDSO_PAGES * PAGE_SIZE);
	if (ret)
		return ret;
	return current->mm->context.vdso == (void __user *)(unsigned long)text_start ? 0 : -EEXIST;
}

int cr_set_mm(const struct cr_mm_info *in, struct file *exe)
{
	struct mm_struct *mm = current->mm;
	int ret = 0;

	if (exe) {
		ret = replace_mm_exe_file(mm, exe);
		if (ret)
			return ret;
	}
	mmap_write_lock(mm);
	mm->start_code = in->start_code;
	mm->end_code = in->end_code;
	mm->start_data = in->start_data;
	mm->end_data = in->end_data;
	mm->start_brk = in->start_brk;
	mm->brk = in->brk;
	mm->start_stack = in->start_stack;
	spin_lock(&mm->arg_lock);
	mm->arg_start = in->arg_start;
	mm->arg_end = in->arg_end;
	mm->env_start = in->env_start;
	mm->env_end = in->env_end;
	spin_unlock(&mm->arg_lock);
	memcpy(mm->saved_auxv, in->auxv, sizeof(mm->saved_auxv));
	mmap_write_unlock(mm);
	return 0;
}

/* --- Files ------------------------------------------------------------------------------------ */

/* The identity of @t's descriptor table, which owns its POSIX locks; 0 for none. */
u64 cr_task_files_identity(struct task_struct *t)
{
	u64 id;

	task_lock(t);
	id = (unsigned long)t->files;
	task_unlock(t);
	return id;
}

/* The next open descriptor of @t at or after *fd, referenced, with its close-on-exec bit. */
struct file *cr_next_file(struct task_struct *t, u32 *fd, bool *cloexec)
{
	unsigned int n = *fd;
	struct file *f = fget_task_next(t, &n);

	if (!f)
		return NULL;
	*fd = n;
	*cloexec = false;
	task_lock(t);
	if (t->files) {
		struct fdtable *fdt;

		rcu_read_lock();
		fdt = files_fdtable(t->files);
		*cloexec = n < fdt->max_fds && test_bit(n, fdt->close_on_exec);
		rcu_read_unlock();
	}
	task_unlock(t);
	return f;
}

/* Whether any lock or lease sits on @inode, whoever holds it: none of them is saved. */
static bool cr_inode_locked(struct inode *inode)
{
#ifdef CONFIG_FILE_LOCKING
	struct file_lock_context *ctx = locks_inode_context(inode);

	return ctx && (!list_empty_careful(&ctx->flc_flock) ||
		       !list_empty_careful(&ctx->flc_posix) ||
		       !list_empty_careful(&ctx->flc_lease));
#else
	return false;
#endif
}

/*
 * What @f is, for files.rs to classify: the inode's identity and type, the filesystem, whether
 * it is a pipe or shmem and of which mount, and its name. Also the open file's flags and position.
 */
void cr_file_facts(struct file *f, struct cr_file_facts *out)
{
	struct inode *inode = file_inode(f);

	memset(out, 0, sizeof(*out));
	out->flags = f->f_flags;
	out->pos = f->f_pos;
	out->dev = new_encode_dev(inode->i_sb->s_dev);
	out->ino = inode->i_ino;
	out->mode = inode->i_mode;
	out->rdev = new_encode_dev(inode->i_rdev);
	out->rdev_major = MAJOR(inode->i_rdev);
	out->rdev_minor = MINOR(inode->i_rdev);
	out->size = i_size_read(inode);
	out->sb_magic = inode->i_sb->s_magic;
	out->nlink = inode->i_nlink;
	if (S_ISFIFO(inode->i_mode) && inode->i_pipe && f->private_data == inode->i_pipe)
		out->facts |= CR_FF_PIPE;
	if (shmem_mapping(f->f_mapping))
		out->facts |= CR_FF_SHMEM;
	if (inode->i_sb->s_flags & SB_KERNMOUNT)
		out->facts |= CR_FF_KERNMOUNT;
	if (d_unlinked(f->f_path.dentry))
		out->facts |= CR_FF_UNLINKED;
	if (cr_inode_locked(inode))
		out->facts |= CR_FF_LOCKED;
	strscpy(out->name, f->f_path.dentry->d_name.name, sizeof(out->name));
}

/*
 * Writes @f's path to @buf (NUL-terminated) and returns its length; @dir asks for the directory
 * it is in instead. *@unlinked says whether that path no longer leads to it.
 */
int cr_file_path(struct file *f, bool dir, char *buf, int len, bool *unlinked)
{
	struct path path = { .mnt = f->f_path.mnt, .dentry = f->f_path.dentry };
	char *p;
	int n;

	if (dir)
		path.dentry = dget_parent(path.dentry);
	p = d_path(&path, buf, len);
	*unlinked = d_unlinked(path.dentry);
	if (dir)
		dput(path.dentry);
	if (IS_ERR(p))
		return PTR_ERR(p);
	n = strlen(p);
	memmove(buf, p, n + 1);
	return n;
}

/* Opens @path with @flags, as the checkpointed open file had them (less the creating ones). */
struct file *cr_open_path(const char *path, u32 flags)
{
	int open_flags = (flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_LARGEFILE;

	return filp_open(path, open_flags, 0);
}

void cr_close_all_fds(void)
{
	unsigned int fd = 0;
	struct file *f;

	while ((f = fget_task_next(current, &fd))) {
		fput(f);
		close_fd(fd);
		fd++;
	}
}

int cr_install_fd(u32 fd, struct file *f, bool cloexec)
{
	return replace_fd(fd, f, cloexec ? O_CLOEXEC : 0);
}

/* --- Root, cwd, umask ------------------------------------------------------------------------- */

int cr_fs_info(struct task_struct *t, char *root, char *cwd, int len, u32 *umask)
{
	struct path r, c;
	char *p;
	int ret = 0;

	task_lock(t);
	if (!t->fs) {
		task_unlock(t);
		return -ENOENT;
	}
	get_fs_root(t->fs, &r);
	get_fs_pwd(t->fs, &c);
	*umask = t->fs->umask;
	task_unlock(t);

	p = d_path(&r, root, len);
	if (IS_ERR(p))
		ret = PTR_ERR(p);
	else
		memmove(root, p, strlen(p) + 1);
	p = d_path(&c, cwd, len);
	if (IS_ERR(p))
		ret = ret ?: PTR_ERR(p);
	else
		memmove(cwd, p, strlen(p) + 1);
	if (!ret && (d_unlinked(c.dentry) || d_unlinked(r.dentry)))
		ret = -ENOENT;
	path_put(&r);
	path_put(&c);
	return ret;
}

int cr_set_fs(const char *root, const char *cwd, u32 umask)
{
	struct path r, c;
	int ret;

	ret = kern_path(root, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &r);
	if (ret)
		return ret;
	ret = kern_path(cwd, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &c);
	if (ret) {
		path_put(&r);
		return ret;
	}
	set_fs_root(current->fs, &r);
	set_fs_pwd(current->fs, &c);
	current->fs->umask = umask & S_IRWXUGO;
	path_put(&r);
	path_put(&c);
	return 0;
}

/* --- Image I/O --------------------------------------------------------------------------------- */

/*
 * Moves all of @iter to or from @f at the file's position (appending where the file says so),
 * in as many calls as it takes; a call that moves nothing is -EIO for a write and -ENODATA (a
 * premature end) for a read. Every image read and write goes through here, by vfs_iter_*():
 * kernel_write() would refuse a file with both ->write and ->write_iter, such as /dev/null.
 */
static int cr_file_iter_all(struct file *f, struct iov_iter *iter)
{
	bool stream = f->f_mode & FMODE_STREAM;
	bool write = iov_iter_rw(iter) == WRITE;

	while (iov_iter_count(iter)) {
		loff_t pos = f->f_pos;
		size_t before = iov_iter_count(iter);
		ssize_t done = write ? vfs_iter_write(f, iter, stream ? NULL : &pos, 0) :
				       vfs_iter_read(f, iter, stream ? NULL : &pos, 0);
		size_t moved;

		if (done < 0)
			return done;
		if (done == 0)
			return write ? -EIO : -ENODATA;
		/*
		 * What was done is what the call returned. Not every ->write_iter leaves the iterator
		 * where its return says (9p's unbuffered write returns the count and leaves it
		 * untouched), and the same bytes would be written again, forever.
		 */
		moved = before - iov_iter_count(iter);
		if (moved < done)
			iov_iter_advance(iter, done - moved);
		else if (moved > done)
			iov_iter_revert(iter, moved - done);
		if (!stream)
			f->f_pos = pos;
		if (fatal_signal_pending(current))
			return -EINTR;
	}
	return 0;
}

/* Writes all of @buf. */
int cr_write_all(struct file *f, const void *buf, size_t len)
{
	struct cr_piece piece = { .data = buf, .len = len };

	return cr_write_pieces(f, &piece, 1);
}

/* Reads exactly @len bytes; returns 0, -ENODATA at a premature end, or an error. */
int cr_read_full(struct file *f, void *buf, size_t len)
{
	struct kvec vec = { .iov_base = buf, .iov_len = len };
	struct iov_iter iter;

	iov_iter_kvec(&iter, ITER_DEST, &vec, 1, len);
	return cr_file_iter_all(f, &iter);
}

/* Writes all of @pieces in one gathered write where the file allows (one copy, no buffer). */
int cr_write_pieces(struct file *f, const struct cr_piece *pieces, u32 n)
{
	struct iov_iter iter;
	size_t len = 0;
	u32 i;

	for (i = 0; i < n; i++)
		len += pieces[i].len;
	iov_iter_kvec(&iter, ITER_SOURCE, (const struct kvec *)pieces, n, len);
	return cr_file_iter_all(f, &iter);
}

#define CR_READ_BATCH 64

/* Fills whole @pages from the file, in order; -ENODATA at a premature end. */
int cr_read_pages(struct file *f, struct page **pages, u32 n)
{
	struct bio_vec vec[CR_READ_BATCH];

	while (n) {
		u32 batch = min_t(u32, n, CR_READ_BATCH), i;
		struct iov_iter iter;
		int err;

		for (i = 0; i < batch; i++)
			bvec_set_page(&vec[i], pages[i], PAGE_SIZE, 0);
		iov_iter_bvec(&iter, ITER_DEST, vec, batch, batch * PAGE_SIZE);
		err = cr_file_iter_all(f, &iter);
		if (err)
			return err;
		pages += batch;
		n -= batch;
	}
	return 0;
}

/* --- Misc ------------------------------------------------------------------------------------- */

u32 cr_current_threads(void)
{
	return get_nr_threads(current);
}

pid_t cr_current_vpid(void)
{
	return task_pid_vnr(current);
}

/* The running kernel's release, NUL-terminated, into @buf of @len bytes. */
void cr_release(char *buf, int len)
{
	strscpy(buf, utsname()->release, len);
}

/* --- Trees ------------------------------------------------------------------------------------ */

/*
 * Under RCU: whether @t's thread group is @root's or descends from it. A process's parent is
 * the thread that forked it, so each step goes to that thread's group leader: a child forked
 * by a non-main thread descends from the thread's process.
 */
static bool cr_descends_from(struct task_struct *t, struct task_struct *root)
{
	for (t = t->group_leader;; t = rcu_dereference(t->real_parent)->group_leader) {
		if (t == root)
			return true;
		if (!t->pid || is_global_init(t))
			return false;
	}
}

/*
 * Collects every task of @ns (threads and zombies included) that belongs to @root's subtree,
 * referenced, into @out, in pid order. Returns how many there are, which may exceed @max: the
 * caller then drops the @max it got and asks again with room for all. *@strangers counts the
 * tasks of @ns outside the subtree.
 */
long cr_collect_tree(struct task_struct *root, struct pid_namespace *ns, struct task_struct **out,
		     long max, long *strangers)
{
	struct pid *pid;
	long n = 0;
	int nr = 1;

	*strangers = 0;
	rcu_read_lock();
	while ((pid = find_ge_pid(nr, ns))) {
		struct task_struct *t = pid_task(pid, PIDTYPE_PID);

		nr = pid_nr_ns(pid, ns) + 1;
		if (!t)
			continue;
		if (!cr_descends_from(t, root)) {
			(*strangers)++;
			continue;
		}
		if (n < max)
			out[n] = get_task_struct(t);
		n++;
	}
	rcu_read_unlock();
	return n;
}

/*
 * Every task of @ns, as process identities: for the check that a tree is closed under
 * parenthood, which does not trust the walk above. Returns how many there are (may exceed @max).
 */
long cr_ns_kin(struct pid_namespace *ns, struct cr_kin *out, long max)
{
	struct pid *pid;
	long n = 0;
	int nr = 1;

	rcu_read_lock();
	while ((pid = find_ge_pid(nr, ns))) {
		struct task_struct *t = pid_task(pid, PIDTYPE_PID);

		nr = pid_nr_ns(pid, ns) + 1;
		if (!t)
			continue;
		if (n < max) {
			out[n].process = (unsigned long)t->group_leader;
			out[n].parent = (unsigned long)rcu_dereference(t->real_parent)->group_leader;
			out[n].pid = pid_nr_ns(pid, ns);
			out[n].reserved = 0;
		}
		n++;
	}
	rcu_read_unlock();
	return n;
}

/*
 * Every task of the system, referenced, for the scan that finds what tasks outside a tree hold
 * of it. Returns how many there are, which may exceed @max (the caller asks again).
 */
long cr_collect_all(struct task_struct **out, long max)
{
	struct task_struct *p, *t;
	long n = 0;

	rcu_read_lock();
	for_each_process_thread(p, t) {
		if (n < max)
			out[n] = get_task_struct(t);
		n++;
	}
	rcu_read_unlock();
	return n;
}

/* The wait status a zombie reports, as wait_task_zombie() computes it. */
static u32 cr_zombie_status(struct task_struct *t)
{
	return (t->signal->flags & SIGNAL_GROUP_EXIT) ? t->signal->group_exit_code : t->exit_code;
}

/* Where @t sits in its tree and what it shares, with pids as @ns sees them. */
void cr_tree_info(struct task_struct *t, struct pid_namespace *ns, struct cr_tree_info *out)
{
	memset(out, 0, sizeof(*out));
	cr_ids(t, ns, &out->pid);
	out->exit_signal = t->exit_signal;
	if (task_active_pid_ns(t) != ns)
		out->flags |= CR_TREE_OTHER_PIDNS;
	if (t->exit_state) {
		out->flags |= CR_TREE_EXITED;
		if (thread_group_leader(t) && !thread_group_empty(t))
			out->flags |= CR_TREE_LEADER_EXITED;
		out->exit_status = cr_zombie_status(t);
		return;
	}
	if (t->signal->is_child_subreaper)
		out->flags |= CR_TREE_SUBREAPER;
	rcu_read_lock();
	if (thread_group_leader(t) && !thread_group_leader(rcu_dereference(t->real_parent)))
		out->flags |= CR_TREE_FORKED_BY_THREAD;
	rcu_read_unlock();
	out->pdeath_signal = t->pdeath_signal;
	task_lock(t);
	out->mm = (unsigned long)t->mm;
	out->files = (unsigned long)t->files;
	out->fs = (unsigned long)t->fs;
	if (t->nsproxy) {
		out->uts_ns = (unsigned long)t->nsproxy->uts_ns;
		out->ipc_ns = (unsigned long)t->nsproxy->ipc_ns;
	}
	task_unlock(t);
	out->sighand = (unsigned long)rcu_access_pointer(t->sighand);
}

/* Whether @t's IPC namespace holds SysV objects, which cr does not save yet. */
bool cr_ipc_ns_in_use(struct task_struct *t)
{
	bool used = false;

#ifdef CONFIG_SYSVIPC
	task_lock(t);
	if (t->nsproxy) {
		struct ipc_namespace *ns = t->nsproxy->ipc_ns;

		used = ns->ids[0].in_use || ns->ids[1].in_use || ns->ids[2].in_use;
	}
	task_unlock(t);
#endif
	return used;
}

/*
 * The node and domain names of @t's UTS namespace, NUL-terminated, into 65-byte buffers. The
 * task lock keeps the namespace alive; the names cannot change under a frozen container (and
 * uts_sem cannot be taken under a spinlock).
 */
void cr_get_uts(struct task_struct *t, char *node, char *domain)
{
	node[0] = domain[0] = 0;
	task_lock(t);
	if (t->nsproxy) {
		struct uts_namespace *ns = t->nsproxy->uts_ns;

		strscpy(node, ns->name.nodename, __NEW_UTS_LEN + 1);
		strscpy(domain, ns->name.domainname, __NEW_UTS_LEN + 1);
	}
	task_unlock(t);
}

/* Sets the calling task's node and domain names; never those of the initial namespace. */
int cr_set_uts(const char *node, const char *domain)
{
	struct uts_namespace *ns = current->nsproxy->uts_ns;

	if (ns == &init_uts_ns)
		return -EPERM;
	down_write(&uts_sem);
	strscpy_pad(ns->name.nodename, node, sizeof(ns->name.nodename));
	strscpy_pad(ns->name.domainname, domain, sizeof(ns->name.domainname));
	up_write(&uts_sem);
	return 0;
}

bool cr_task_exited(struct task_struct *t)
{
	return READ_ONCE(t->exit_state) != 0;
}

bool cr_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* --- Pipes and shared memory ------------------------------------------------------------------ */

/*
 * The pipe behind @f, which cr_file_facts() found to be a pipe end (CR_FF_PIPE): its identity,
 * ends, capacity, buffered length, and whether a buffer holds a packet.
 */
void cr_pipe_info(struct file *f, struct cr_pipe_info *out)
{
	struct pipe_inode_info *pipe = f->private_data;

	memset(out, 0, sizeof(*out));
	pipe_lock(pipe);
	out->pipe = (unsigned long)pipe;
	out->readers = pipe->readers;
	out->writers = pipe->writers;
	out->capacity = pipe->max_usage * PAGE_SIZE;
	for (unsigned int i = pipe->tail; i != pipe->head; i++) {
		out->len += pipe_buf(pipe, i)->len;
		out->buffers++;
		if (pipe_buf(pipe, i)->flags & PIPE_BUF_FLAG_PACKET)
			out->packets = 1;
	}
#ifdef CONFIG_WATCH_QUEUE
	out->watch_queue = !!pipe->watch_queue;
#endif
	pipe_unlock(pipe);
	out->readable = !!(f->f_mode & FMODE_READ);
	out->writable = !!(f->f_mode & FMODE_WRITE);
}

/*
 * Copies up to @max bytes that pipe end @f holds, without consuming them, and into @segments
 * (unless NULL) up to @max_segments words, one per non-empty buffer copied: its copied length,
 * with CR_PIPE_PACKET set for a packet. Returns the byte count.
 */
long cr_pipe_peek(struct file *f, void *buf, long max, u32 *segments, long max_segments)
{
	struct pipe_inode_info *pipe = f->private_data;
	long n = 0, seg = 0;

	pipe_lock(pipe);
	for (unsigned int i = pipe->tail; i != pipe->head && n < max; i++) {
		struct pipe_buffer *b = pipe_buf(pipe, i);
		long len = min_t(long, b->len, max - n);
		void *src;

		if (!len)
			continue;
		if (segments) {
			if (seg == max_segments)
				break;
			segments[seg++] = len | (b->flags & PIPE_BUF_FLAG_PACKET ? CR_PIPE_PACKET : 0);
		}
		src = kmap_local_page(b->page);
		memcpy(buf + n, src + b->offset, len);
		kunmap_local(src);
		n += len;
	}
	pipe_unlock(pipe);
	return n;
}

/*
 * Gives the pipe behind @f (a pipe end, or a FIFO's open file) a capacity of @bytes through
 * fcntl(F_SETPIPE_SZ)'s own code and limits. Returns the capacity it has now, or an error.
 */
long cr_pipe_set_capacity(struct file *f, u32 bytes)
{
	return pipe_fcntl(f, F_SETPIPE_SZ, bytes);
}

/* A new anonymous pipe: its read and write ends. */
int cr_pipe_create(struct file **read_end, struct file **write_end)
{
	struct file *ends[2];
	int ret = create_pipe_files(ends, 0);

	if (ret)
		return ret;
	*read_end = ends[0];
	*write_end = ends[1];
	return 0;
}

/* --- File locks ----------------------------------------------------------------------------- */

static void cr_lock_entry(struct file_lock_core *flc, u32 kind, struct cr_lock_info *out,
			  long max, long *n)
{
	struct cr_lock_info *l;

	if ((*n)++ >= max)
		return;
	l = &out[*n - 1];
	l->owner = (unsigned long)flc->flc_owner;
	l->file = (unsigned long)flc->flc_file;
	l->kind = kind;
	l->write = flc->flc_type == F_WRLCK;
	if (kind == CR_LOCK_POSIX || kind == CR_LOCK_OFD) {
		struct file_lock *fl = container_of(flc, struct file_lock, c);

		l->start = fl->fl_start;
		l->end = fl->fl_end;
	} else {
		l->start = 0;
		l->end = 0;
	}
}

/*
 * The locks held on @f's inode: flocks, POSIX and OFD locks, and leases, up to @max of them into
 * @out. Returns how many there are, which may be more than @max. Requests still waiting are not
 * held: they hang off the lock that blocks them, and their tasks retry after a restart.
 */
long cr_inode_locks(struct file *f, struct cr_lock_info *out, long max)
{
	struct file_lock_context *ctx = locks_inode_context(file_inode(f));
	struct file_lock_core *flc;
	long n = 0;

	if (!ctx)
		return 0;
	spin_lock(&ctx->flc_lock);
	list_for_each_entry(flc, &ctx->flc_flock, flc_list)
		cr_lock_entry(flc, CR_LOCK_FLOCK, out, max, &n);
	list_for_each_entry(flc, &ctx->flc_posix, flc_list)
		cr_lock_entry(flc, flc->flc_flags & FL_OFDLCK ? CR_LOCK_OFD : CR_LOCK_POSIX, out,
			      max, &n);
	list_for_each_entry(flc, &ctx->flc_lease, flc_list)
		cr_lock_entry(flc, CR_LOCK_LEASE, out, max, &n);
	spin_unlock(&ctx->flc_lock);
	return n;
}

/*
 * Takes a lock of @kind through @f for the calling task, without waiting, as flock() or
 * fcntl(F_SETLK / F_OFD_SETLK) would: a POSIX lock is its descriptor table's, the others @f's.
 */
int cr_lock_take(struct file *f, u32 kind, bool write, s64 start, s64 end)
{
	struct file_lock *fl = locks_alloc_lock();
	int ret;

	if (!fl)
		return -ENOMEM;
	fl->c.flc_type = write ? F_WRLCK : F_RDLCK;
	fl->c.flc_file = f;
	fl->c.flc_pid = current->tgid;
	switch (kind) {
	case CR_LOCK_FLOCK:
		fl->c.flc_flags = FL_FLOCK;
		fl->c.flc_owner = f;
		fl->fl_start = 0;
		fl->fl_end = OFFSET_MAX;
		ret = locks_lock_file_wait(f, fl);
		break;
	case CR_LOCK_POSIX:
		fl->c.flc_flags = FL_POSIX;
		fl->c.flc_owner = current->files;
		fl->fl_start = start;
		fl->fl_end = end;
		ret = vfs_lock_file(f, F_SETLK, fl, NULL);
		break;
	case CR_LOCK_OFD:
		fl->c.flc_flags = FL_POSIX | FL_OFDLCK;
		fl->c.flc_owner = f;
		fl->c.flc_pid = -1;
		fl->fl_start = start;
		fl->fl_end = end;
		ret = vfs_lock_file(f, F_OFD_SETLK, fl, NULL);
		break;
	default:
		ret = -EINVAL;
	}
	locks_free_lock(fl);
	return ret;
}

/* --- Event files ---------------------------------------------------------------------------- */

/* The state of event file @f, which cr_file_facts() named a @kind: -EINVAL if it is not one. */
int cr_event_read(struct file *f, u32 kind, struct cr_event_info *out)
{
	unsigned int flags, users;
	int clockid, settime_flags, ret = -EINVAL;
	ktime_t remaining, interval;
	sigset_t mask;

	memset(out, 0, sizeof(*out));
	out->kind = kind;
	switch (kind) {
	case CR_EVENT_EVENTFD:
		ret = eventfd_cr_state(f, &out->count, &flags, &users);
		out->flags = flags;
		out->users = users;
		break;
	case CR_EVENT_TIMERFD:
		ret = timerfd_cr_state(f, &clockid, &settime_flags, &out->count, &remaining,
				       &interval);
		out->clock = clockid;
		out->flags = settime_flags;
		out->value_ns = remaining;
		out->interval_ns = interval;
		out->now_ns = ktime_get_real_ns();
		break;
	case CR_EVENT_SIGNALFD:
		ret = signalfd_cr_mask(f, &mask);
		out->mask = mask.sig[0];
		break;
	case CR_EVENT_EPOLL:
		/* Only whether it is one: its watches are read apart. */
		ret = min(eventpoll_cr_items(f, NULL, 0), 0);
		break;
	}
	return ret;
}

/* A new event file as @in describes it, not installed anywhere. */
struct file *cr_event_create(const struct cr_event_info *in, bool nonblock)
{
	int flags = nonblock ? O_NONBLOCK : 0;
	sigset_t mask = { .sig = { in->mask } };

	switch (in->kind) {
	case CR_EVENT_EVENTFD:
		return eventfd_cr_create(in->count, in->flags | flags);
	case CR_EVENT_TIMERFD:
		return timerfd_cr_create(in->clock, flags, in->flags, in->value_ns, in->interval_ns,
					 in->count);
	case CR_EVENT_SIGNALFD:
		return signalfd_cr_create(&mask, flags);
	case CR_EVENT_EPOLL:
		return eventpoll_cr_create();
	}
	return ERR_PTR(-EINVAL);
}

/*
 * The watches of epoll @ep, each with a reference to its file: how many it has, more than @max
 * (and none given) if they do not fit, or -EINVAL if @ep is not an epoll file.
 */
long cr_epoll_items(struct file *ep, struct cr_epoll_item *out, long max)
{
	struct eventpoll_cr_item *items;
	long n, i;

	if (max < 0 || max > INT_MAX)
		return -EINVAL;
	items = kvmalloc_array(max ?: 1, sizeof(*items), GFP_KERNEL);
	if (!items)
		return -ENOMEM;
	n = eventpoll_cr_items(ep, items, max);
	for (i = 0; n <= max && i < n; i++) {
		out[i] = (struct cr_epoll_item){
			.file = items[i].file,
			.fd = items[i].fd,
			.events = (__force u32)items[i].events,
			.data = items[i].data,
			.ready = items[i].ready,
		};
	}
	kvfree(items);
	return n;
}

/* Adds watch @w to epoll @ep, as the checkpoint found it. */
int cr_epoll_add(struct file *ep, const struct cr_epoll_item *w)
{
	return eventpoll_cr_add(ep, w->file, w->fd, (__force __poll_t)w->events, w->data,
				w->ready);
}

/* Sets the status flags fcntl(F_SETFL) can change, as checkpointed. */
void cr_set_status_flags(struct file *f, u32 flags)
{
	unsigned int settable = O_APPEND | O_NONBLOCK | O_NOATIME;

	/* As fcntl(F_SETFL): on a pipe or FIFO, O_DIRECT is packet mode. */
	if (S_ISFIFO(file_inode(f)->i_mode))
		settable |= O_DIRECT;

	spin_lock(&f->f_lock);
	f->f_flags = (f->f_flags & ~settable) | (flags & settable);
	f->f_iocb_flags = iocb_flags(f);
	spin_unlock(&f->f_lock);
}

/* What a checkpoint keeps of a shmem object: identity, size, seals, owner, mode and times. */
void cr_shmem_attrs(struct file *f, struct cr_shmem_info *out)
{
	struct inode *inode = file_inode(f);
	struct user_namespace *ns = current_user_ns();
	struct timespec64 atime = inode_get_atime(inode), mtime = inode_get_mtime(inode);

	memset(out, 0, sizeof(*out));
	out->id = (unsigned long)inode;
	out->size = i_size_read(inode);
	out->seals = SHMEM_I(inode)->seals;
	out->mode = inode->i_mode;
	out->uid = from_kuid_munged(ns, inode->i_uid);
	out->gid = from_kgid_munged(ns, inode->i_gid);
	out->atime_ns = timespec64_to_ns(&atime);
	out->mtime_ns = timespec64_to_ns(&mtime);
}

/*
 * A new shmem object as @in describes: an unnamed one called @name, or an unlinked file
 * created with O_TMPFILE in the tmpfs directory @name. Owner, mode and times are set by
 * cr_shmem_set_attrs() once the content is back; seals by cr_shmem_seal() at the very end.
 */
struct file *cr_shmem_create(const struct cr_shmem_info *in, const char *name)
{
	struct path dir;
	struct file *f;
	int ret;

	if (in->kind != CR_SHMEM_UNLINKED)
		return shmem_file_setup(name, in->size, mk_vma_flags(VMA_NORESERVE_BIT));
	ret = kern_path(name, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &dir);
	if (ret)
		return ERR_PTR(ret);
	if (dir.dentry->d_sb->s_magic != TMPFS_MAGIC) {
		path_put(&dir);
		return ERR_PTR(-EXDEV);
	}
	f = kernel_tmpfile_open(mnt_idmap(dir.mnt), &dir, S_IFREG | S_IRUSR | S_IWUSR,
				O_RDWR | O_LARGEFILE, current_cred());
	path_put(&dir);
	if (IS_ERR(f))
		return f;
	ret = vfs_truncate(&f->f_path, in->size);
	if (ret) {
		fput(f);
		return ERR_PTR(ret);
	}
	return f;
}

/* Gives a restored shmem object its owner, mode and times. */
int cr_shmem_set_attrs(struct file *f, const struct cr_shmem_info *in)
{
	struct user_namespace *ns = current_user_ns();
	struct dentry *dentry = f->f_path.dentry;
	struct inode *inode = d_inode(dentry);
	struct iattr attr = {
		.ia_valid = ATTR_MODE | ATTR_UID | ATTR_GID | ATTR_ATIME | ATTR_MTIME |
			    ATTR_ATIME_SET | ATTR_MTIME_SET,
		.ia_mode = (in->mode & S_IALLUGO) | (inode->i_mode & ~S_IALLUGO),
		.ia_vfsuid = VFSUIDT_INIT(make_kuid(ns, in->uid)),
		.ia_vfsgid = VFSGIDT_INIT(make_kgid(ns, in->gid)),
		.ia_atime = ns_to_timespec64(in->atime_ns),
		.ia_mtime = ns_to_timespec64(in->mtime_ns),
	};
	int ret;

	if (!vfsuid_valid(attr.ia_vfsuid) || !vfsgid_valid(attr.ia_vfsgid))
		return -EINVAL;
	inode_lock(inode);
	ret = notify_change(file_mnt_idmap(f), dentry, &attr, NULL);
	inode_unlock(inode);
	return ret;
}

/* Seals a restored memfd as it was, denying writable mappings as F_SEAL_WRITE does. */
int cr_shmem_seal(struct file *f, u32 seals)
{
	struct inode *inode = file_inode(f);
	unsigned int *now = &SHMEM_I(inode)->seals;
	int ret = 0;

	inode_lock(inode);
	if ((seals & F_SEAL_WRITE) && !(*now & F_SEAL_WRITE))
		ret = mapping_deny_writable(f->f_mapping);
	if (!ret)
		*now = seals;
	inode_unlock(inode);
	return ret;
}

/* Another open file of what @f opens (a pipe end, a memfd), as reopening /proc/self/fd/N does. */
struct file *cr_reopen_same(struct file *f, u32 flags)
{
	int open_flags = (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_LARGEFILE;

	return dentry_open(&f->f_path, open_flags, current_cred());
}

/* Sets the position of a file restart opened. */
int cr_set_pos(struct file *f, u64 pos)
{
	loff_t ret = vfs_llseek(f, pos, SEEK_SET);

	if (ret < 0)
		return ret;
	return ret == pos ? 0 : -EIO;
}

/*
 * Whether @f has data all through [@pos, @pos + @len): a hole in a sparse file reads as zeros,
 * which must not pass for pages. Moves the position.
 */
int cr_file_holds(struct file *f, u64 pos, u64 len)
{
	loff_t hole = vfs_llseek(f, pos, SEEK_HOLE);

	if (hole < 0)
		return hole == -ENXIO ? 0 : hole;
	return hole >= pos + len;
}

/* Frees [@pos, @pos + @len) of @f, which then reads as a hole. */
int cr_file_punch(struct file *f, u64 pos, u64 len)
{
	return vfs_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len);
}

/* The address spaces that map @f's inode (identities), up to @max; how many mappings there are. */
long cr_mapping_mms(struct file *f, u64 *out, long max)
{
	struct address_space *mapping = f->f_mapping;
	struct rb_node *node;
	long n = 0;

	/*
	 * The interval tree's iterators are not exported; an in-order walk of its rbtree visits
	 * the same VMAs, every one of them since the range is the whole file.
	 */
	i_mmap_lock_read(mapping);
	for (node = rb_first(&mapping->i_mmap.rb_root); node; node = rb_next(node)) {
		struct vm_area_struct *vma = rb_entry(node, struct vm_area_struct, shared.rb);

		if (n < max)
			out[n] = (unsigned long)vma->vm_mm;
		n++;
	}
	i_mmap_unlock_read(mapping);
	return n;
}

/* Reads @len bytes at @pos of @f, whatever its position: -ENODATA at end of file. */
int cr_read_at(struct file *f, void *buf, u32 len, u64 pos)
{
	loff_t p = pos;
	ssize_t n = kernel_read(f, buf, len, &p);

	if (n < 0)
		return n;
	return n == len ? 0 : -ENODATA;
}

int cr_write_at(struct file *f, const void *buf, u32 len, u64 pos)
{
	loff_t p = pos;
	ssize_t n = kernel_write(f, buf, len, &p);

	if (n < 0)
		return n;
	return n == len ? 0 : -EIO;
}
