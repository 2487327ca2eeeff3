# ruff: noqa: F821
"""The event-accumulating engine for networks of linear populations with additive synapses.

Appended after ``engine_template.py``. When every population is linear (dx/dt = A x + b, one A per
population, real distinct eigenvalues) and every synaptic jump adds ``weight * beta`` to the target's
state, superposition makes the work per synaptic event one multiply-add per affected variable:

* forward: each population is propagated once per step to the step's end, t1; an event at t_e adds
  ``w * P(t1 - t_e) beta`` to the end-of-step state of each target (P(s) = exp(A s) from the modal
  decomposition, d exponentials per event and connection, shared by all targets; a graded input event
  multiplies w by its value);
* spikes: neurons whose threshold function may have reached 0 during the step are walked through the
  step's events from their start-of-step state to find the exact first crossing, looking inside each
  piece between events for a maximum at or above 0 too; the earliest is emitted, its reset and its
  outgoing spikes are added by superposition, and the search repeats (zero-delay recurrence stays exact
  and in time order); a crossing located once is reused while no emitted spike reaches its population;
* which neurons may have reached threshold (excursions="exact"): those above it at t1, and those whose
  "room", a bound on how far above f(t1) the threshold function stood during the step, reaches 0. The
  bound comes from the free flow plus the step's positive input, which for the usual kernels (increasing
  and concave from 0 over a step, e.g. an exponential synapse onto a LIF) stands below its end value
  times a fixed shape of time; its largest value is exact for two variables (one logarithm, only where
  the cheaper curvature bound leaves doubt); every other share is bounded by its kernel's extremes
  (excursion_tables, excursion_room, deliver_events);
* backward: the adjoint is kept as its end-of-step equivalent, so an event's weight gradient is
  ``lambda(t1) . P(t1 - t_e) beta`` and the spike-time term ``w lambda(t1) . P(t1 - t_e) tau``.

With excursions="step_end" the room is 0 (but for jumps that raise the threshold function at once): a
spike is detected only where the threshold is exceeded at the end of a step (then its first crossing is
located exactly); an excursion above threshold and back within one step is not a spike then, unless later
spikes of the step raise the neuron's end-of-step state: its crossing is then found after spikes that come
later in time, and the step is simulated again with the neuron watched, so that spikes stay in time order
(see forward_fast). With "exact" that happens only through rounding.

Speed note: numba reference-counts every array a call binds or a slice makes (atomic increments and
decrements), so the loops that run per event or per candidate are written inline, with indices, inside a
few functions called once per step. Those functions never allocate: forward_fast and backward_fast
allocate the work arrays and hand them to forward_fast_steps and backward_fast_steps, which, like the
helpers they call, are compiled without numba's runtime (``flat_jit``), where binding and slicing arrays
costs nothing.
"""

EPS64 = 2.220446049250313e-16  # float64's machine epsilon: the root finder's stopping floor
MAX_RESTARTS = 4  # attempts at a step after crossings found late (see forward_fast)


@flat_jit
def deliver_events(GI, CI, OC, W, Zend, t1, ev_t, ev_v, ev_i, e_from, e_to, CT, RP, room_mode, col):
    """Add the effect at t1 of the step's events e_from..e_to-1 (state [var, neuron]): a unit-weight jump of
    connection c at t1 - s stands at t1 as P(s) beta_c, the same for every target; an event's value ev_v
    (1 unless it is a graded input) multiplies its weights.

    Into the room (spiking targets; RP's first half, see forward_fast), each event adds how far above its
    share of f(t1) its share of the threshold function may stand earlier in the step: a weight w times
    K_c(s) at t1 (K_c: see excursion_tables) stood at w K_c(u) for u in [0, s] and at 0 before the event, so
    the largest excess is w (max K - K_c(s)) for w > 0 and |w| (K_c(s) - min K) for w < 0, the extremes taken
    over 0, K_c(0) and the critical points of K_c before s (a jump that raises the threshold function at once
    counts too). With room_mode 2 (the step's first deliveries, after which excursion_room sets the room
    against f(t1) as a whole), a shaped connection's positive share goes to P (RP's second half), at its
    end value, its negative share nowhere (K_c >= 0 on the step), and any other share counts whole (its
    largest value, not its excess over its end value). room_mode 0 (excursions="step_end") adds room only
    for jumps that raise the threshold function at once.

    CT: per connection, its jump's modes PB, KAPPA, its target's rates MU and KT (excursion_tables), in one
    table because every array argument of a call costs atomic reference counting."""
    half = np.uint64(RP.shape[0] // 2)
    dmax = col.shape[0] - 2
    o_ka = dmax * dmax  # where KAPPA, MU and KT start in a row of CT
    o_mu = o_ka + dmax
    o_kt = o_mu + dmax
    for e in range(e_from, e_to):
        g = ev_i[e, 0]
        j = ev_i[e, 1]
        s = t1 - ev_t[e]
        v = ev_v[e]
        for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
            c = OC[r]
            post = CI[c, POST]
            d = GI[post, DIM]
            npost = CI[c, NPOST]
            row = CI[c, WOFF] + j * npost
            ks = 0.0
            for i in range(d):
                col[i] = 0.0
            for k in range(d):
                ek = math.exp(CT[c, o_mu + k] * s)
                ks += ek * CT[c, o_ka + k]
                for i in range(d):
                    col[i] += ek * CT[c, k * dmax + i] * v
            up = 0.0  # room per unit of positive weight, and per unit of negative weight
            down = 0.0
            into_p = room_mode == 2 and CT[c, o_kt + 2] == 1.0
            if into_p and v != 0.0:
                if v > 0.0:
                    up = v * ks
                else:
                    down = -v * ks
            elif (room_mode > 0 or CT[c, o_kt] != 0.0) and GI[post, SPIKING] == 1 and v != 0.0:
                # (with step-end tests too, a jump that raises the threshold function at once must be seen)
                k_0 = CT[c, o_kt]
                k_hi = max(0.0, k_0, ks)
                k_lo = min(0.0, k_0, ks)
                for i in range(int(CT[c, o_kt + 1])):
                    if CT[c, o_kt + 3 + 2 * i] < s:
                        k_hi = larger(k_hi, CT[c, o_kt + 4 + 2 * i])
                        k_lo = smaller(k_lo, CT[c, o_kt + 4 + 2 * i])
                if v > 0.0:
                    up = v * (k_hi - ks)
                    down = v * (ks - k_lo)
                else:
                    up = -v * (ks - k_lo)
                    down = -v * (k_hi - ks)
                if room_mode == 2:  # excursion_room takes f(t1) out whole: the share's end value goes back in
                    up += v * ks
                    down -= v * ks
            # unsigned indices: no negative-index test, so the loops vectorise without views. The room's share,
            # up * max(w, 0) - down * min(w, 0), is written hu * w + hs * |w| (max and min would not vectorise)
            uw = np.uint64(row)
            uz = np.uint64(GI[post, ZOFF])
            un = np.uint64(npost)
            col[dmax] = 0.5 * (up - down)  # in the state's precision, like the loops' other operands
            col[dmax + 1] = 0.5 * (up + down)
            hu = col[dmax]
            hs = col[dmax + 1]
            ut = uz + half if into_p else uz  # an offset, not an array rebound (reference-counted)
            if d == 2 and col[0] != 0.0 and col[1] != 0.0:  # both rows in one pass: each weight read once
                c0 = col[0]
                c1 = col[1]
                if hs != 0.0:
                    for m in range(un):
                        w = W[uw + m]
                        Zend[uz + m] += w * c0
                        Zend[uz + un + m] += w * c1
                        RP[ut + m] += hu * w + hs * abs(w)
                else:
                    for m in range(un):
                        w = W[uw + m]
                        Zend[uz + m] += w * c0
                        Zend[uz + un + m] += w * c1
                continue
            if hs != 0.0:
                for m in range(un):
                    w = W[uw + m]
                    RP[ut + m] += hu * w + hs * abs(w)
            w_row = W[row:row + npost]
            for i in range(d):
                ci = col[i]
                if ci == 0.0:
                    continue
                z_row = Zend[GI[post, ZOFF] + i * npost:GI[post, ZOFF] + (i + 1) * npost]  # views: vectorised
                for m in range(npost):
                    z_row[m] += w_row[m] * ci


@jit
def step_flow(GI, dt, MU, PI, PIB, dmax):
    """Per population, the free flow over one step: P(dt) and c(dt), x(t + dt) = P(dt) x(t) + c(dt) without
    events."""
    G = GI.shape[0]
    Pdt = np.zeros((G, dmax, dmax), np.float64)
    Adt = np.zeros((G, dmax), np.float64)
    for g in range(G):
        if GI[g, IS_INPUT] == 0:
            modal_matrix(g, dt, MU, PI, GI[g, DIM], Pdt[g])
            modal_affine(g, dt, MU, PIB, GI[g, DIM], Adt[g])
    return Pdt, Adt


@flat_jit
def free_flow(GI, Pdt, Adt, Z, Zend):
    """Zend = P(dt) Z + c(dt) for every population (state [variable, neuron]): a step without events."""
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        d = GI[g, DIM]
        nn = GI[g, SIZE]
        z0 = GI[g, ZOFF]
        for i in range(d):
            out = Zend[z0 + i * nn:z0 + (i + 1) * nn]  # views: the loops vectorise
            for m in range(nn):
                out[m] = Adt[g, i]
            for q in range(d):
                pq = Pdt[g, i, q]
                if pq != 0.0:
                    src = Z[z0 + q * nn:z0 + (q + 1) * nn]
                    for m in range(nn):
                        out[m] += pq * src[m]


@flat_jit
def exp_sum(R, M, L, d, s):
    """sum_{k >= L} R[L, k] exp(M[L, k] s)."""
    h = 0.0
    for k in range(L, d):
        h += R[L, k] * math.exp(M[L, k] * s)
    return h


@flat_jit
def exp_sum_zeros(r, mu, d, s_max, R, M, Zs, nz):
    """The zeros in (0, s_max) of h(s) = sum_k r[k] exp(mu[k] s), ascending, in Zs[0, :count]; returns count.

    At most d - 1 (Descartes' rule for sums of exponentials), found without sampling: h exp(-mu_0 s) has
    the same zeros as h and its derivative is a sum of d - 1 exponentials (level 1 of R, M); between the
    zeros of that derivative it is monotone, so it has at most one zero there, bracketed by a change of
    sign. Levels are solved from the last (one exponential: no zero) up. R, M, Zs: (d, d) work; nz: (d,)."""
    for k in range(d):
        R[0, k] = r[k]
        M[0, k] = mu[k]
    for L in range(1, d):
        for k in range(L, d):
            M[L, k] = M[L - 1, k] - M[L - 1, L - 1]
            R[L, k] = R[L - 1, k] * M[L, k]
    nz[d - 1] = 0
    for L in range(d - 2, -1, -1):
        nz[L] = 0
        a = 0.0
        ha = exp_sum(R, M, L, d, a)
        for q in range(nz[L + 1] + 1):
            b = Zs[L + 1, q] if q < nz[L + 1] else s_max
            hb = exp_sum(R, M, L, d, b)
            if (ha < 0.0 < hb) or (hb < 0.0 < ha):  # one zero inside: the Illinois variant of regula falsi
                lo, h_lo, hi, h_hi = a, ha, b, hb
                side = 0
                root = 0.5 * (lo + hi)
                for _ in range(200):
                    root = (lo * h_hi - hi * h_lo) / (h_hi - h_lo)
                    if not lo < root < hi:
                        root = 0.5 * (lo + hi)
                    hm = exp_sum(R, M, L, d, root)
                    if hm == 0.0 or hi - lo <= 4.0 * EPS64 * hi:
                        break
                    if (hm > 0.0) == (h_hi > 0.0):
                        hi, h_hi = root, hm
                        if side == -1:
                            h_lo *= 0.5
                        side = -1
                    else:
                        lo, h_lo = root, hm
                        if side == 1:
                            h_hi *= 0.5
                        side = 1
                Zs[L, nz[L]] = root
                nz[L] += 1
            elif hb == 0.0 and ha != 0.0 and b < s_max:
                Zs[L, nz[L]] = b
                nz[L] += 1
            a = b
            ha = hb
    return nz[0]


@jit
def excursion_tables(GI, CI, MU, PI, PIB, PB, TH, dt, dmax):
    """What the exact excursion test needs, per population and per connection (see forward_fast).

    The threshold function on a piece from state x is f(s) = TH_d + sum_k (FA_k . x) e^{mu_k s} + FB_k phi_k(s).
    A unit jump of connection c at s = 0 changes it by K_c(s) = sum_k KAPPA[c, k] e^{mu_k s}. KT[c] holds
    K_c(0), the number of critical points of K_c in (0, dt), 1.0 if the connection is "shaped" (below), then
    each critical point's (time, value).

    Shaped: K_c(0) = 0 and K_c increasing and concave on [0, dt], with the same shape rho_g = K_c / K_c(dt) as
    the population's other shaped connections (RHO[g]; e.g. an exponential synapse onto a LIF neuron, dt
    before the kernel's inflection). Then K_c(t - t_e) <= K_c(t1 - t_e) rho_g(t - t0) for every event time t_e
    in the step (K'/K decreases), and the step's positive shaped input P, counted at t1, stands below
    P rho_g(t - t0) at every t: the threshold function stays below f_free(t) + P rho_g(t - t0), whose
    largest value is bounded by its end values and its curvature, |h''| dt^2 / 8 <= sum_k |CV_k . x + CR_k P
    + CB_k|."""
    G = GI.shape[0]
    C = CI.shape[0]
    FA = np.zeros((G, dmax, dmax))
    FB = np.zeros((G, dmax))
    CV = np.zeros((G, dmax, dmax))
    CB = np.zeros((G, dmax))
    CR = np.zeros((G, dmax))
    RHO = np.zeros((G, dmax))
    has_rho = np.zeros(G, np.bool_)
    KAPPA = np.zeros((C, dmax))
    KT = np.zeros((C, 3 + 2 * dmax))
    R = np.empty((dmax, dmax))
    M = np.empty((dmax, dmax))
    Zs = np.empty((dmax, dmax))
    nz = np.empty(dmax, np.int64)
    r = np.empty(dmax)
    for g in range(G):
        if GI[g, SPIKING] == 0:
            continue
        d = GI[g, DIM]
        for k in range(d):
            for i in range(d):
                FB[g, k] += TH[g, i] * PIB[g, k, i]
                for q in range(d):
                    FA[g, k, q] += TH[g, i] * PI[g, k, i, q]
    for c in range(C):
        g = CI[c, POST]
        if GI[g, SPIKING] == 0:
            continue
        d = GI[g, DIM]
        scale = 0.0
        k_end = 0.0
        curv_0 = 0.0
        curv_end = 0.0
        for k in range(d):
            for i in range(d):
                KAPPA[c, k] += TH[g, i] * PB[c, k, i]
            mu = MU[g, k]
            KT[c, 0] += KAPPA[c, k]
            scale += abs(KAPPA[c, k])
            k_end += KAPPA[c, k] * math.exp(mu * dt)
            curv_0 += mu * mu * KAPPA[c, k]
            curv_end += mu * mu * KAPPA[c, k] * math.exp(mu * dt)
            r[k] = mu * KAPPA[c, k]
        # np.float64(dt): first_high_point passes a float64 s_max, and a float32 one here (dt in the state's
        # precision) would make numba compile exp_sum_zeros a second time; the value is the same
        n = exp_sum_zeros(r, MU[g], d, np.float64(dt), R, M, Zs, nz)
        KT[c, 1] = n
        for i in range(n):
            u = Zs[0, i]
            KT[c, 3 + 2 * i] = u
            for k in range(d):
                KT[c, 4 + 2 * i] += KAPPA[c, k] * math.exp(MU[g, k] * u)
        if n > 0 or abs(KT[c, 0]) > 1e-12 * scale or not k_end > 0.0 or curv_0 > 0.0 or curv_end > 0.0:
            continue
        for k in range(d):
            r[k] = MU[g, k] * MU[g, k] * KAPPA[c, k]
        if exp_sum_zeros(r, MU[g], d, np.float64(dt), R, M, Zs, nz) > 0:  # an inflection inside the step
            continue
        if not has_rho[g]:
            has_rho[g] = True
            for k in range(d):
                RHO[g, k] = KAPPA[c, k] / k_end
        same = True
        for k in range(d):
            same = same and abs(KAPPA[c, k] / k_end - RHO[g, k]) <= 1e-9 * (abs(RHO[g, k]) + 1e-300)
        if same:
            KT[c, 2] = 1.0
    for g in range(G):
        if GI[g, SPIKING] == 0:
            continue
        for k in range(GI[g, DIM]):
            mu = MU[g, k]
            top = larger(1.0, math.exp(mu * dt)) * dt * dt / 8.0  # the largest e^{mu s} on the step, times dt^2 / 8
            for q in range(GI[g, DIM]):
                CV[g, k, q] = mu * mu * FA[g, k, q] * top
            CB[g, k] = mu * FB[g, k] * top
            CR[g, k] = mu * mu * RHO[g, k] * top
    # the per-connection table of deliver_events: PB (flattened), KAPPA, the target's MU, KT
    CT = np.zeros((C, dmax * dmax + 2 * dmax + KT.shape[1]))
    for c in range(C):
        g = CI[c, POST]
        for k in range(dmax):
            for i in range(dmax):
                CT[c, k * dmax + i] = PB[c, k, i]
            CT[c, dmax * dmax + k] = KAPPA[c, k]
            CT[c, dmax * dmax + dmax + k] = MU[g, k]
        for i in range(KT.shape[1]):
            CT[c, dmax * dmax + 2 * dmax + i] = KT[c, i]
    return FA, FB, RHO, CV, CB, CR, CT


@flat_jit
def excursion_room(GI, TH, MU, FA, FB, RHO, CV, CB, CR, dt, Z, Zend, RP, H1):
    """Adds to the room (RP's first half) how far above its end value f(t1) the threshold function of each
    spiking neuron may have stood during the step, after the step's first deliveries (P, RP's second half:
    their shaped positive input; see excursion_tables, deliver_events): the largest value of f_free + P rho
    on the step, less f(t1), bounded by the end values and the curvature (for two variables the search
    makes it exact where it matters: peak_cut). H1: work, one value per neuron."""
    for g in range(GI.shape[0]):
        if GI[g, SPIKING] == 0:
            continue
        d = GI[g, DIM]
        nn = GI[g, SIZE]
        z0 = GI[g, ZOFF]
        half = RP.shape[0] // 2
        pg = RP[half + z0:half + z0 + nn]  # views: the loops vectorise
        out = RP[z0:z0 + nn]
        thd = TH[g, d]
        if d == 2:  # h = f_free + P rho: at most one critical point, a maximum if h' > 0 at t0 and < 0 at t1
            mu0 = MU[g, 0]
            mu1 = MU[g, 1]
            e0 = math.exp(mu0 * dt)
            e1 = math.exp(mu1 * dt)
            q0 = abs(mu0) * larger(1.0, e0) * dt * dt / 8.0
            q1 = abs(mu1) * larger(1.0, e1) * dt * dt / 8.0
            c_end = thd + FB[g, 0] * (dt if mu0 == 0.0 else (e0 - 1.0) / mu0)
            c_end += FB[g, 1] * (dt if mu1 == 0.0 else (e1 - 1.0) / mu1)
            th0 = TH[g, 0]
            th1 = TH[g, 1]
            fa00 = FA[g, 0, 0]
            fa01 = FA[g, 0, 1]
            fa10 = FA[g, 1, 0]
            fa11 = FA[g, 1, 1]
            fb0 = FB[g, 0]
            fb1 = FB[g, 1]
            rho0 = RHO[g, 0]
            rho1 = RHO[g, 1]
            zs0 = Z[z0:z0 + nn]
            zs1 = Z[z0 + nn:z0 + 2 * nn]
            ze0 = Zend[z0:z0 + nn]
            ze1 = Zend[z0 + nn:z0 + 2 * nn]
            # a bound for every neuron, in a loop without branches: h at t0 and t1, and a maximum inside bounded
            # by the curvature, |h''| <= sum_k |mu_k r_k| max(1, e^{mu_k dt}). Where that makes a candidate, the
            # search replaces it by the maximum itself (peak_cut), once per step

            for m in range(nn):
                x0 = zs0[m]
                x1 = zs1[m]
                a0 = fa00 * x0 + fa01 * x1 + pg[m] * rho0
                a1 = fa10 * x0 + fa11 * x1 + pg[m] * rho1
                r0 = mu0 * a0 + fb0
                r1 = mu1 * a1 + fb1
                f0 = thd + th0 * x0 + th1 * x1
                h1 = c_end + a0 * e0 + a1 * e1  # f_free(t1) + P
                top = f0 if f0 > h1 else h1
                inside = r0 + r1 > 0.0 and r0 * e0 + r1 * e1 < 0.0
                bump = q0 * abs(r0) + q1 * abs(r1)
                room_m = out[m] + top + (bump if inside else 0.0) - (thd + th0 * ze0[m] + th1 * ze1[m])
                out[m] = room_m if room_m > 0.0 else 0.0  # >= 0 but for rounding: never fewer candidates than step_end
            continue
        h1 = H1[z0:z0 + nn]  # more variables: max(f(t0), f_free(t1) + P) - f(t1) plus the curvature bound
        for m in range(nn):
            h1[m] = thd
        for k in range(d):
            mu = MU[g, k]
            ek = math.exp(mu * dt)
            phi = dt if mu == 0.0 else (ek - 1.0) / mu
            for m in range(nn):
                a = pg[m] * RHO[g, k]
                for q in range(d):
                    a += FA[g, k, q] * Z[z0 + q * nn + m]
                h1[m] += a * ek + FB[g, k] * phi
        for m in range(nn):
            f0 = thd
            f1 = thd
            for i in range(d):
                f0 += TH[g, i] * Z[z0 + i * nn + m]
                f1 += TH[g, i] * Zend[z0 + i * nn + m]
            out[m] = larger(out[m] + larger(f0, h1[m]) - f1, 0.0)
        for k in range(d):
            cb = CB[g, k]
            cr = CR[g, k]
            for m in range(nn):
                acc = cb + cr * pg[m]
                for q in range(d):
                    acc += CV[g, k, q] * Z[z0 + q * nn + m]
                out[m] += abs(acc)


@leaf
def peak_cut(g, x0, x1, p, dt, MU, TH, FA, FB, RHO):
    """For a two-variable neuron with start state (x0, x1) and shaped positive input p: how much the room's
    curvature bound (excursion_room) exceeds the largest value of h = f_free + p rho on the step, located
    at h's one critical point (a logarithm); 0 if h has no maximum inside the step."""
    mu0 = MU[g, 0]
    mu1 = MU[g, 1]
    e0 = math.exp(mu0 * dt)
    e1 = math.exp(mu1 * dt)
    a0 = FA[g, 0, 0] * x0 + FA[g, 0, 1] * x1 + p * RHO[g, 0]
    a1 = FA[g, 1, 0] * x0 + FA[g, 1, 1] * x1 + p * RHO[g, 1]
    r0 = mu0 * a0 + FB[g, 0]
    r1 = mu1 * a1 + FB[g, 1]
    if not (r0 + r1 > 0.0 and r0 * e0 + r1 * e1 < 0.0):
        return 0.0
    thd = TH[g, 2]
    phi0 = dt if mu0 == 0.0 else (e0 - 1.0) / mu0
    phi1 = dt if mu1 == 0.0 else (e1 - 1.0) / mu1
    top = larger(thd + TH[g, 0] * x0 + TH[g, 1] * x1, thd + FB[g, 0] * phi0 + FB[g, 1] * phi1 + a0 * e0 + a1 * e1)
    bump = (abs(mu0) * larger(1.0, e0) * abs(r0) + abs(mu1) * larger(1.0, e1) * abs(r1)) * dt * dt / 8.0
    sp = smaller(larger(math.log(-r1 / r0) / (mu0 - mu1), 0.0), dt)
    em0 = math.expm1(mu0 * sp)
    em1 = math.expm1(mu1 * sp)
    h = thd + a0 * (1.0 + em0) + a1 * (1.0 + em1)
    h += FB[g, 0] * (sp if mu0 == 0.0 else em0 / mu0) + FB[g, 1] * (sp if mu1 == 0.0 else em1 / mu1)
    return larger(top + bump - larger(top, h), 0.0)


@flat_jit
def first_high_point(g, d, x, s_max, MU, FA, FB, TH, r, R, M, Zs, nz):
    """The first critical point s in (0, s_max) of the threshold function on a piece from state x at which it
    is at or above 0, or -1.0; f(s) in r[d]. Below 0 at the piece's start, it crosses in (0, s] then, once
    (it is monotone after the previous critical point). r: 2 d + 1 values of work, the modal
    coefficients a_k = FA_k . x kept in r[d + 1:]."""
    for k in range(d):
        a = 0.0
        for q in range(d):
            a += FA[g, k, q] * x[q]
        r[d + 1 + k] = a
        r[k] = MU[g, k] * a + FB[g, k]
    n = exp_sum_zeros(r, MU[g], d, s_max, R, M, Zs, nz)
    for i in range(n):
        s = Zs[0, i]
        f = TH[g, d]
        for k in range(d):
            mu = MU[g, k]
            em1 = math.expm1(mu * s)
            f += r[d + 1 + k] * (1.0 + em1) + FB[g, k] * (s if mu == 0.0 else em1 / mu)
        if f >= 0.0:
            r[d] = f
            return s
    return -1.0


@leaf
def gather(GI, Z, g, m, x):
    n = GI[g, SIZE]
    for i in range(GI[g, DIM]):
        x[i] = Z[GI[g, ZOFF] + i * n + m]


@jit
def to_layout(GI, Z, soa):
    """Copy of Z with every population's block reordered to [variable, neuron] (soa) or back."""
    out = np.empty_like(Z)
    for g in range(GI.shape[0]):
        if GI[g, IS_INPUT] == 1:
            continue
        n = GI[g, SIZE]
        d = GI[g, DIM]
        z0 = GI[g, ZOFF]
        for m in range(n):
            for i in range(d):
                if soa:
                    out[z0 + i * n + m] = Z[z0 + m * d + i]
                else:
                    out[z0 + m * d + i] = Z[z0 + i * n + m]
    return out


@leaf
def insert_event(ev_t, ev_v, ev_i, n_ev, t, g, j, kind, spike):
    """Insert a spike into the step's time-ordered list, after every event at the same time."""
    pos = n_ev
    while pos > 0 and ev_t[pos - 1] > t:
        ev_t[pos] = ev_t[pos - 1]
        ev_v[pos] = ev_v[pos - 1]
        for k in range(4):  # element by element: a row slice would be a view, reference-counted
            ev_i[pos, k] = ev_i[pos - 1, k]
        pos -= 1
    ev_t[pos] = t
    ev_v[pos] = 1.0
    ev_i[pos, 0] = g
    ev_i[pos, 1] = j
    ev_i[pos, 2] = kind
    ev_i[pos, 3] = spike
    return pos


@jit
def forward_fast(GI, CI, OC, PR, W, Z0, dt, n_steps, tol, exact, budget, in_time, in_unit, in_group, in_value, RO, ws,
                 MU, PI, PIB, PB, TH, BETA, log_t, log_i, sp_x, y, first, counts, MF):
    """forward() for networks of linear populations with additive synapses (see the module docstring).

    Per step: free evolution to t1, the step's inputs logged and delivered, then the spike searches. Each
    search collects the neurons whose threshold function may have reached 0 in the step (f(t1) + room >= 0),
    walks them through the step's events in lockstep, piece by piece (a piece ends at an event), and
    locates the crossing in the first piece where any of them reaches threshold (at its end, or at a
    maximum inside it; exact: a boolean, excursions="exact"); the earliest
    is emitted (logged, reset, delivered by superposition) and the search repeats; a step that would hold more
    than ``budget`` spikes stops the run (ERR_BUDGET, with the step in counts[1]). Piece propagators are
    shared within a population. Thresholds are affine (TH) and jumps additive (BETA) here, so the loops
    read tables instead of calling model functions; and the whole step runs in this function, because a
    call that binds arrays costs atomic reference counting (see the module docstring)."""
    dmax = sp_x.shape[1]
    ztot = Z0.shape[0]
    G = GI.shape[0]
    n_spiking = 0
    for g in range(G):
        if GI[g, SPIKING] == 1:
            n_spiking += GI[g, SIZE]
    Z = to_layout(GI, Z0, True)
    Zend = Z.copy()
    acc_buf = np.empty(ztot + 1, np.float64)
    # the room, per spiking neuron (at ZOFF + neuron): how far above f(t1) its threshold function may have stood
    # during the step (excursion_room, deliver_events); a neuron with f(t1) + room >= 0 is walked. An emitter's
    # room grows by its reset's effect (below). RP: the room, then the step's shaped positive input (P, see
    # excursion_tables), in one array so that deliveries pick either by an offset
    RP = np.zeros(2 * (ztot + 1), Z.dtype)
    H1 = np.zeros(ztot + 1, Z.dtype)  # excursion_room's work
    refined = np.full(ztot, -1, np.int64)  # per neuron: the attempt at a step whose room peak_cut made exact
    P = np.empty((dmax, dmax), np.float64)
    x = np.empty(dmax, np.float64)
    xs = np.empty(dmax, np.float64)
    best_x = np.empty(dmax, np.float64)
    col = np.empty(dmax + 2, Z.dtype)
    coef = np.empty((2, dmax), np.float64)
    em_s = np.empty(dmax, np.float64)  # the root finder's exponentials expm1(mu_k s) at its last s
    # per neuron (at ZOFF + neuron): where its next walk in this step resumes. A walk that stopped before
    # the piece holding the spike just emitted stays valid up to that piece: every later spike is later
    # in time, so the pieces before it never change again. ck_step: the attempt at a step (below) the
    # checkpoint belongs to
    ck_step = np.full(ztot, -1, np.int64)
    ck_t = np.empty(ztot, np.float64)  # its time
    ck_e = np.empty(ztot, np.int64)  # the next event of the step it has to apply
    ck_x = np.empty((ztot, dmax), np.float64)  # the state there
    # per neuron: its own last spike in this step (event index, -1 if none) and the state just after it,
    # where its walks restart when the checkpoints cannot be used (see ``ordered`` below)
    rs_e = np.full(ztot, -1, np.int64)
    rs_x = np.empty((ztot, dmax), np.float64)
    # The step's buffers hold as many events as the sample's log: a step whose inputs, or whose next spike, would
    # not fit in what is left of the log returns ERR_CAPACITY at once, and the caller runs the sample again with
    # more room. Allocated once and never replaced: an array rebound inside the loops is reference-counted at
    # every iteration
    cap = log_t.shape[0]
    spiked = np.empty(cap, np.int64)  # per spike of the step: its neuron, if that neuron's first (else -1)
    known_t = np.full((ztot, 2), -1.0)  # per neuron: [spikes that had reached it, time] of its last crossing
    known_x = np.empty((ztot, dmax), np.float64)  # ... and the state there
    reached = np.zeros(G, np.float64)  # per population: spikes emitted that reach it
    ev_t = np.empty(cap, Z.dtype)
    ev_v = np.empty(cap, Z.dtype)  # an event's value: a graded input's, else 1
    ev_i = np.empty((cap, 4), np.int64)  # group, unit, kind, index into step_x
    step_x = np.empty((cap, dmax), Z.dtype)
    # a neuron is a candidate at most once per search
    cand_i = np.empty((n_spiking + 1, 4), np.int64)  # group, neuron, first event of its walk, found (1, 2)
    cand_t = np.empty(2 * (n_spiking + 1), np.float64)  # [time reached; end of the crossing piece]
    cand_x = np.empty((n_spiking + 1, dmax), np.float64)
    cand_f = np.empty(n_spiking + 1, np.float64)
    pool = np.empty((n_spiking + 1, 2), np.int64)  # the neurons at or above threshold at t1: population, index
    watch = np.empty((n_spiking + 1, 2), np.int64)  # the neurons walked in every search of this step (see below)
    probe_t = np.empty(MAX_RESTARTS, np.float64)  # this step's probes (see forward_fast_steps)
    quiet = np.ones(G, np.bool_)  # per population: its spikes reach no spiking population
    for c in range(CI.shape[0]):
        if GI[CI[c, POST], SPIKING] == 1:
            quiet[CI[c, PRE]] = False
    prev_t = np.empty(n_spiking + 1, np.float64)  # per candidate: the start of the last piece it walked
    prev_e = np.empty(n_spiking + 1, np.int64)
    prev_x = np.empty((n_spiking + 1, dmax), np.float64)
    PG_ = np.empty((G, dmax, dmax), np.float64)  # per population: the current piece's propagator
    AG_ = np.empty((G, dmax), np.float64)
    SG_ = np.empty(G, np.float64)
    Pdt, Adt = step_flow(GI, dt, MU, PI, PIB, dmax)
    FA, FB, RHO, CV, CB, CR, CT = excursion_tables(GI, CI, MU, PI, PIB, PB, TH, dt, dmax)
    EG_ = np.empty((G, dmax), np.float64)  # per population: exp(mu_k s) of the current piece
    r_w = np.empty(2 * dmax + 1, np.float64)  # work for first_high_point (models with more than two variables)
    R_w = np.empty((dmax, dmax), np.float64)
    M_w = np.empty((dmax, dmax), np.float64)
    Zs_w = np.empty((dmax, dmax), np.float64)
    nz_w = np.empty(dmax, np.int64)
    work = (Z, Zend, acc_buf, RP, H1, refined, P, x, xs, best_x, col, coef, em_s, ck_step, ck_t, ck_e, ck_x, rs_e,
            rs_x, spiked, known_t, known_x, reached, ev_t, ev_v, ev_i, step_x, cand_i, cand_t, cand_x, cand_f, pool,
            watch, probe_t, quiet, prev_t, prev_e, prev_x, PG_, AG_, SG_, Pdt, Adt, FA, FB, RHO, CV, CB, CR, CT, EG_,
            r_w, R_w, M_w, Zs_w, nz_w)
    return forward_fast_steps(GI, CI, OC, PR, W, dt, n_steps, tol, exact, budget, in_time, in_unit, in_group, in_value,
                              RO, ws, MU, PI, PIB, TH, BETA, log_t, log_i, sp_x, y, first, counts, work, MF)


@flat_jit
def forward_fast_steps(GI, CI, OC, PR, W, dt, n_steps, tol, exact, budget, in_time, in_unit, in_group, in_value, RO,
                       ws, MU, PI, PIB, TH, BETA, log_t, log_i, sp_x, y, first, counts, work, MF):
    """forward_fast's steps, in the work arrays it allocated (``work``, unpacked below): compiled without
    numba's runtime (no allocation here), so the views, calls and inlined model functions of the per-event
    loops cost no reference counting."""
    (Z, Zend, acc_buf, RP, H1, refined, P, x, xs, best_x, col, coef, em_s, ck_step, ck_t, ck_e, ck_x, rs_e, rs_x,
     spiked, known_t, known_x, reached, ev_t, ev_v, ev_i, step_x, cand_i, cand_t, cand_x, cand_f, pool, watch,
     probe_t, quiet, prev_t, prev_e, prev_x, PG_, AG_, SG_, Pdt, Adt, FA, FB, RHO, CV, CB, CR, CT, EG_, r_w,
     R_w, M_w, Zs_w, nz_w) = work
    thr, reset = MF[MF_THR], MF[MF_RESET]  # the model's spike functions (see model_functions)
    dmax = sp_x.shape[1]
    ztot = Z.shape[0]
    G = GI.shape[0]
    half = cand_t.shape[0] // 2
    attempt = 0
    n_pool = 0
    probe_group = -1  # probes are logged as inputs of value 0, of the first input population
    for g in range(G):
        if GI[g, IS_INPUT] == 1 and probe_group < 0:
            probe_group = g
    counts[0] = 0
    ip = 0
    n_in = in_time.shape[0]
    for n in range(n_steps):
        t0 = n * dt
        t1 = (n + 1) * dt
        # the step's inputs, in_*[ip:ip_end], its first events
        ip_end = ip
        while ip_end < n_in and in_time[ip_end] <= t1:
            ip_end += 1
        n_in_step = ip_end - ip
        if counts[0] + n_in_step > log_t.shape[0]:
            return ERR_CAPACITY
        # Spikes are emitted in time order, which the checkpoints and every spike's located time rely on. A
        # crossing that the end-of-step test missed at first (the neuron went above threshold and back below by
        # t1, until later spikes raised its end-of-step state) comes out earlier than spikes already emitted,
        # whose times were located without it. The step is then simulated again from its start, with that neuron
        # watched (walked in every search whatever its end-of-step state) and a probe: an event of value 0 where
        # it was above threshold, so that a walk checking the threshold at event times sees the crossing in
        # order. After MAX_RESTARTS such attempts a late crossing is emitted out of order (counted in counts[7]),
        # and the rest of the step walks from the start of the step or from each neuron's own spike.
        n_watch = 0
        n_probe = 0
        restarts = 0
        while True:
            attempt += 1  # checkpoints (ck_step) belong to one attempt at one step
            for g in range(G):  # crossings located in an earlier attempt are void
                reached[g] += 1.0
            free_flow(GI, Pdt, Adt, Z, Zend)  # once per step (and attempt): a call here costs nothing noticeable
            RP[:] = 0.0
            n_ev = n_in_step
            for e in range(n_ev):
                ev_t[e] = in_time[ip + e]
                ev_v[e] = in_value[ip + e]
                ev_i[e, 0] = in_group[ip + e]
                ev_i[e, 1] = in_unit[ip + e]
                ev_i[e, 2] = KIND_INPUT
                ev_i[e, 3] = -1
            for k in range(n_probe):
                if counts[0] + n_ev >= log_t.shape[0]:
                    return ERR_CAPACITY
                pos = insert_event(ev_t, ev_v, ev_i, n_ev, probe_t[k], probe_group, 0, KIND_INPUT, -1)
                ev_v[pos] = 0.0
                n_ev += 1
            if n_ev > 0:  # np.int64(0), not 0: a literal argument makes numba compile deliver_events once more
                deliver_events(GI, CI, OC, W, Zend, t1, ev_t, ev_v, ev_i, np.int64(0), n_ev, CT, RP,
                               2 if exact else 0, col)
            if exact:
                excursion_room(GI, TH, MU, FA, FB, RHO, CV, CB, CR, dt, Z, Zend, RP, H1)
            n_spiked = 0
            ordered = True
            t_last = t0
            rescan = True
            restart = False
            while True:
                counts[4] += 1
                # the pool: neurons whose threshold function may have reached 0 during the step (f(t1) + room >= 0), by
                # population and index. A spike that reaches no spiking population changes no other neuron's f(t1)
                # or room, so after one the pool is kept (the emitter stays in it) instead of scanning every neuron
                if rescan:
                    n_pool = 0
                    for g in range(GI.shape[0]):
                        if GI[g, SPIKING] == 0:
                            continue
                        d = GI[g, DIM]
                        ng = GI[g, SIZE]
                        z0 = GI[g, ZOFF]
                        head = RP[z0:z0 + ng]
                        for m in range(ng):
                            acc_buf[m] = TH[g, d] + head[m]
                        for i in range(d):
                            coeff = TH[g, i]
                            if coeff != 0.0:
                                zrow = Zend[z0 + i * ng:z0 + (i + 1) * ng]  # a view: the loop vectorises
                                for m in range(ng):
                                    acc_buf[m] += coeff * zrow[m]
                        # how many, counted in a loop that vectorises: the collecting loop below branches per neuron,
                        # and the last search of a step usually finds none
                        n_above = 0
                        for m in range(ng):
                            n_above += 0 if acc_buf[m] < 0.0 else 1  # the collecting test, so a NaN counts too
                        if n_above == 0:
                            continue
                        for j in range(ng):
                            if acc_buf[j] < 0.0:
                                continue
                            if exact and d == 2 and refined[z0 + j] != attempt:  # the room's bound, made exact
                                refined[z0 + j] = attempt
                                cut = smaller(peak_cut(g, Z[z0 + j], Z[z0 + ng + j], RP[ztot + 1 + z0 + j], dt, MU, TH,
                                                   FA, FB, RHO), RP[z0 + j])  # the room stays >= 0
                                RP[z0 + j] -= cut
                                acc_buf[j] -= cut
                                if acc_buf[j] < 0.0:
                                    n_above -= 1
                                    if n_above == 0:
                                        break
                                    continue
                            pool[n_pool, 0] = g
                            pool[n_pool, 1] = j
                            n_pool += 1
                            n_above -= 1
                            if n_above == 0:
                                break
                # the candidates: the pool and the watched neurons, with where each walk starts
                n_cand = 0
                for pc in range(n_pool + n_watch):
                    if pc < n_pool:
                        g = pool[pc, 0]
                        j = pool[pc, 1]
                    else:
                        g = watch[pc - n_pool, 0]
                        j = watch[pc - n_pool, 1]
                        pooled = False
                        for q in range(n_pool):
                            pooled = pooled or (pool[q, 0] == g and pool[q, 1] == j)
                        if pooled:
                            continue
                    d = GI[g, DIM]
                    ng = GI[g, SIZE]
                    z0 = GI[g, ZOFF]
                    cand_i[n_cand, 0] = g
                    cand_i[n_cand, 1] = j
                    cand_i[n_cand, 3] = 0
                    prev_e[n_cand] = -1
                    if ordered and ck_step[z0 + j] == attempt:  # resume an earlier walk of this step
                        cand_t[n_cand] = ck_t[z0 + j]
                        cand_i[n_cand, 2] = ck_e[z0 + j]  # the next event it has to apply
                        for i in range(d):
                            cand_x[n_cand, i] = ck_x[z0 + j, i]
                    elif rs_e[z0 + j] >= 0:  # from its own spike earlier in this step, just after the reset
                        cand_t[n_cand] = ev_t[rs_e[z0 + j]]
                        cand_i[n_cand, 2] = rs_e[z0 + j]
                        for i in range(d):
                            cand_x[n_cand, i] = rs_x[z0 + j, i]
                    else:  # from the start of the step
                        cand_t[n_cand] = t0
                        cand_i[n_cand, 2] = 0
                        for i in range(d):
                            cand_x[n_cand, i] = Z[z0 + i * ng + j]
                    n_cand += 1
                counts[6] += n_cand
                if n_cand == 0:
                    break
                # the walk: the first piece in which any candidate reaches threshold
                for g in range(GI.shape[0]):
                    SG_[g] = -1.0
                found = False
                # from the earliest event a candidate has not applied: starting at the step's first event would
                # cost O(events of the step) per search, O(spikes^2) in a step where neurons fire many times
                e_walk = n_ev
                for c in range(n_cand):
                    e_walk = smaller(e_walk, cand_i[c, 2])
                for e in range(e_walk, n_ev + 1):
                    te = t1 if e == n_ev else ev_t[e]
                    for c in range(n_cand):
                        if cand_i[c, 2] > e:
                            continue
                        g = cand_i[c, 0]
                        j = cand_i[c, 1]
                        d = GI[g, DIM]
                        prev_t[c] = cand_t[c]
                        prev_e[c] = e
                        for i in range(d):
                            prev_x[c, i] = cand_x[c, i]
                        s = te - cand_t[c]
                        if s != SG_[g]:  # the piece propagator P(s), c(s) of population g
                            for i in range(d):
                                AG_[g, i] = 0.0
                                for q in range(d):
                                    PG_[g, i, q] = 0.0
                            for k in range(d):
                                mu = MU[g, k]
                                em1 = math.expm1(mu * s)
                                EG_[g, k] = 1.0 + em1
                                phi = s if mu == 0.0 else em1 / mu
                                for i in range(d):
                                    AG_[g, i] += phi * PIB[g, k, i]
                                    for q in range(d):
                                        PG_[g, i, q] += (1.0 + em1) * PI[g, k, i, q]
                            SG_[g] = s
                        f = TH[g, d]
                        for i in range(d):
                            acc = AG_[g, i]
                            for q in range(d):
                                acc += PG_[g, i, q] * cand_x[c, q]
                            xs[i] = acc
                            f += TH[g, i] * acc
                        # an excursion above threshold and back inside the piece: f has a maximum at or above 0 there.
                        # For two variables f' = r_0 e^{mu_0 s} + r_1 e^{mu_1 s} has one zero at most, a maximum
                        # if f' > 0 at the start and < 0 at the end; for more, its zeros are found one by one
                        s_hi = -1.0
                        if exact and d == 2 and f < 0.0 and s > 0.0:
                            a0 = FA[g, 0, 0] * cand_x[c, 0] + FA[g, 0, 1] * cand_x[c, 1]
                            a1 = FA[g, 1, 0] * cand_x[c, 0] + FA[g, 1, 1] * cand_x[c, 1]
                            r0 = MU[g, 0] * a0 + FB[g, 0]
                            r1 = MU[g, 1] * a1 + FB[g, 1]
                            if r0 + r1 > 0.0 and r0 * EG_[g, 0] + r1 * EG_[g, 1] < 0.0:
                                sp = math.log(-r1 / r0) / (MU[g, 0] - MU[g, 1])
                                sp = smaller(larger(sp, 0.0), s)
                                fp = TH[g, d]
                                for k in range(2):
                                    mu = MU[g, k]
                                    em1 = math.expm1(mu * sp)
                                    fp += (a0 if k == 0 else a1) * (1.0 + em1)
                                    fp += FB[g, k] * (sp if mu == 0.0 else em1 / mu)
                                if fp >= 0.0:
                                    s_hi = sp
                                    f = fp
                        elif exact and d > 2 and s > 0.0:
                            for i in range(d):
                                x[i] = cand_x[c, i]
                            sp = first_high_point(g, d, x, s, MU, FA, FB, TH, r_w, R_w, M_w, Zs_w, nz_w)
                            if sp >= 0.0:
                                s_hi = sp
                                f = r_w[d]
                        if s_hi >= 0.0:
                            cand_i[c, 3] = 3  # crosses in (cand_t, cand_t + s_hi], before a maximum inside the piece
                            cand_t[c + half] = cand_t[c] + s_hi
                            cand_f[c] = f  # the threshold function there, where the root finder starts
                            found = True
                            continue
                        if f >= 0.0:
                            cand_i[c, 3] = 1  # crosses in (cand_t, te]; cand_x stays the state at cand_t
                            cand_t[c + half] = te
                            cand_f[c] = f  # the threshold function at te, where the root finder starts
                            found = True
                            continue
                        for i in range(d):
                            cand_x[c, i] = xs[i]
                        cand_t[c] = te
                        counts[5] += 1
                        if e == n_ev:
                            continue
                        # the jumps of this event and of every later one at the same instant, then the threshold: a
                        # spike pushed over by a jump is logged after all of them, so its state must include them
                        e2 = e
                        while True:
                            sg = ev_i[e2, 0]
                            for r in range(GI[sg, OUT_START], GI[sg, OUT_START] + GI[sg, OUT_COUNT]):
                                cn = OC[r]
                                if CI[cn, POST] == g:
                                    w = W[CI[cn, WOFF] + ev_i[e2, 1] * CI[cn, NPOST] + j] * ev_v[e2]
                                    for i in range(d):
                                        cand_x[c, i] += w * BETA[cn, i]
                            if e2 + 1 < n_ev and ev_t[e2 + 1] == te:
                                e2 += 1
                            else:
                                break
                        cand_i[c, 2] = e2 + 1  # the next event this candidate has not seen
                        f = TH[g, d]
                        for i in range(d):
                            f += TH[g, i] * cand_x[c, i]
                        if f >= 0.0:
                            cand_i[c, 3] = 2  # pushed over threshold by the jump at te
                            found = True
                    if found:
                        break
                # the crossings in that piece, located (or known from an earlier search); the earliest wins
                best_t = math.inf
                best = -1
                for c in range(n_cand):
                    if cand_i[c, 3] == 0:
                        continue
                    g = cand_i[c, 0]
                    j = cand_i[c, 1]
                    d = GI[g, DIM]
                    z = GI[g, ZOFF] + j
                    if cand_i[c, 3] == 2:
                        tc = cand_t[c]
                        for i in range(d):
                            xs[i] = cand_x[c, i]
                    elif known_t[z, 0] == reached[g] and cand_t[c] < known_t[z, 1] <= cand_t[c + half]:
                        # located by an earlier search of this step, and no spike emitted since has reached this
                        # population (``reached`` counts them): same trajectory, and the crossing is in this piece.
                        # Locating every crossing again after every spike would cost O(spikes^2) root findings
                        tc = known_t[z, 1]
                        for i in range(d):
                            xs[i] = known_x[z, i]
                    else:
                        # the first s in (0, s_max] where the affine threshold function reaches 0 on the free
                        # flow from x (below 0 at s = 0, not at s_max): f(s) = TH[g, d] + sum_k a_k exp(mu_k s) +
                        # b_k phi_k(s), d exponentials per iteration, shared by f, f' and f''. Halley's iteration
                        # (cubic convergence) from the secant, kept inside the bracket by the bracket's secant; it
                        # stops when f is zero to rounding (|f| within a few ulps of its largest term): near the
                        # root f is a difference of terms of order one, so smaller steps only dither around it
                        s_max = cand_t[c + half] - cand_t[c]
                        f0 = TH[g, d]
                        for i in range(d):
                            x[i] = cand_x[c, i]
                        for k in range(d):
                            a = 0.0
                            b = 0.0
                            for i in range(d):
                                th = TH[g, i]
                                if th == 0.0:
                                    continue
                                b += th * PIB[g, k, i]
                                for q in range(d):
                                    a += th * PI[g, k, i, q] * x[q]
                            coef[0, k] = a
                            coef[1, k] = b
                            f0 += a
                        counts[8] += 1
                        s = 0.0
                        s_em = 0.0  # the s at which em_s was computed
                        for k in range(d):
                            em_s[k] = 0.0
                        if f0 < 0.0:
                            lo = 0.0
                            f_lo = f0
                            hi = s_max
                            f_hi = cand_f[c]
                            s = -f0 * s_max / (f_hi - f0)
                            for _ in range(100):
                                f = TH[g, d]
                                floor = abs(f)
                                rate = 0.0
                                curv = 0.0
                                counts[9] += 1
                                for k in range(d):
                                    mu = MU[g, k]
                                    em1 = math.expm1(mu * s)
                                    em_s[k] = em1
                                    s_em = s
                                    term_a = coef[0, k] * (1.0 + em1)
                                    term_b = coef[1, k] * (s if mu == 0.0 else em1 / mu)
                                    f += term_a + term_b
                                    floor += abs(term_a) + abs(term_b)
                                    r = (1.0 + em1) * (mu * coef[0, k] + coef[1, k])
                                    rate += r
                                    curv += mu * r
                                if abs(f) <= 4.0 * EPS64 * floor:
                                    break
                                if f > 0.0:
                                    hi = s
                                    f_hi = f
                                else:
                                    lo = s
                                    f_lo = f
                                den = 2.0 * rate * rate - f * curv
                                new = s - 2.0 * f * rate / den if rate > 0.0 and den > 0.0 else lo
                                if not lo < new < hi:
                                    new = lo - f_lo * (hi - lo) / (f_hi - f_lo)
                                    if not lo < new < hi:
                                        new = 0.5 * (lo + hi)
                                if abs(new - s) <= tol or hi - lo <= tol:
                                    s = smaller(larger(new, lo), hi)
                                    break
                                s = new
                        if s != s_em:
                            for k in range(d):
                                em_s[k] = math.expm1(MU[g, k] * s)
                        for i in range(d):  # the state there, x(s) = P(s) x + c(s), from the last exponentials
                            xs[i] = 0.0
                        for k in range(d):
                            mu = MU[g, k]
                            em1 = em_s[k]
                            phi = s if mu == 0.0 else em1 / mu
                            for i in range(d):
                                acc = phi * PIB[g, k, i]
                                for q in range(d):
                                    acc += (1.0 + em1) * PI[g, k, i, q] * x[q]
                                xs[i] += acc
                        tc = cand_t[c] + s
                        known_t[z, 0] = reached[g]
                        known_t[z, 1] = tc
                        for i in range(d):
                            known_x[z, i] = xs[i]
                    if tc < best_t:
                        best_t = tc
                        best = c
                        for i in range(d):
                            best_x[i] = xs[i]
                if best < 0:
                    break
                if best_t < t_last:
                    if restarts < MAX_RESTARTS:  # watch it, and simulate the step again from its start
                        g = cand_i[best, 0]
                        j = cand_i[best, 1]
                        watched = False
                        for q in range(n_watch):
                            watched = watched or (watch[q, 0] == g and watch[q, 1] == j)
                        if not watched:
                            watch[n_watch, 0] = g
                            watch[n_watch, 1] = j
                            n_watch += 1
                        if cand_i[best, 3] != 2 and probe_group >= 0:
                            # located inside a piece whose start and end it had both been below at: a probe
                            # event between the crossing and the end of the piece it was found in (above
                            # threshold there) lets the walks see it at the right time
                            probe_t[n_probe] = 0.5 * (best_t + cand_t[best + half])
                            n_probe += 1
                        restart = True
                        break
                    ordered = False
                    counts[7] += 1
                t_last = larger(t_last, best_t)
                # every candidate's walk, up to the piece that holds the spike, is where its next walk resumes
                for c in range(n_cand if ordered else 0):
                    gc = cand_i[c, 0]
                    z = GI[gc, ZOFF] + cand_i[c, 1]
                    ck_step[z] = attempt
                    if prev_e[c] == e:  # it walked the spike's piece: back to the piece's start
                        ck_t[z] = prev_t[c]
                        ck_e[z] = e
                        for i in range(GI[gc, DIM]):
                            ck_x[z, i] = prev_x[c, i]
                    else:
                        ck_t[z] = cand_t[c]
                        ck_e[z] = cand_i[c, 2]
                        for i in range(GI[gc, DIM]):
                            ck_x[z, i] = cand_x[c, i]
                if counts[0] + n_ev >= log_t.shape[0]:  # one more event would not fit in the log
                    return ERR_CAPACITY
                # emit it: log, reset (superposed onto the end-of-step state), deliver
                g = cand_i[best, 0]
                j = cand_i[best, 1]
                if n_spiked >= budget:  # a runaway: the step's work grows with its spikes (see Simulator)
                    counts[1] = n
                    counts[2] = g
                    counts[3] = j
                    return ERR_BUDGET
                kind = KIND_TRIGGERED if cand_i[best, 3] == 2 else KIND_CROSSING
                if cand_i[best, 3] == 3:
                    counts[11] += 1  # an excursion that the end of its piece did not show
                d = GI[g, DIM]
                n_g = GI[g, SIZE]
                z = GI[g, ZOFF] + j
                p = params_of(GI, PR, g, j)
                for i in range(d):
                    step_x[n_spiked, i] = best_x[i]
                pos = insert_event(ev_t, ev_v, ev_i, n_ev, best_t, g, j, kind, n_spiked)
                n_ev += 1
                reset(g, best_x, p, xs)
                if thr(g, xs, p) >= 0.0:
                    counts[2] = g
                    counts[3] = j
                    return ERR_RESET
                modal_matrix(g, t1 - best_t, MU, PI, d, P)
                for i in range(d):
                    acc = 0.0
                    for q in range(d):
                        acc += P[i, q] * (xs[q] - best_x[q])
                    Zend[z + i * n_g] += acc
                for e2 in range(n_spiked if pos < n_ev - 1 else 0):  # a spike inserted before the step's last
                    if spiked[e2] >= 0 and rs_e[spiked[e2]] >= pos:  # event shifts later ones' indices
                        rs_e[spiked[e2]] += 1
                spiked[n_spiked] = z if rs_e[z] < 0 else -1
                n_spiked += 1
                rs_e[z] = pos
                # its crossing is used up: its walks restart at the spike's logged time, which rounding to the
                # working precision may put before best_t, where the old crossing would be found again
                known_t[z, 0] = -1.0
                ck_step[z] = attempt  # later walks of this neuron resume at its own spike, reset
                ck_t[z] = best_t
                ck_e[z] = pos
                for i in range(d):
                    ck_x[z, i] = xs[i]
                    rs_x[z, i] = xs[i]
                deliver_events(GI, CI, OC, W, Zend, t1, ev_t, ev_v, ev_i, pos, pos + 1, CT, RP,
                               1 if exact else 0, col)
                for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
                    reached[CI[OC[r], POST]] += 1.0  # crossings known in these populations are void now
                # its reset adds J(u) = TH . P(u) (xs - best_x) to its threshold function from best_t on: the room
                # grows by how far J may stand above its end value J(t1 - best_t) (end values and curvature)
                # (with step-end detection there is no room to grow)
                if exact:
                    s_r = t1 - best_t
                    j_0 = 0.0
                    j_end = 0.0
                    curv = 0.0
                    for k in range(d):
                        jd = 0.0
                        for q in range(d):
                            jd += FA[g, k, q] * (xs[q] - best_x[q])
                        mu = MU[g, k]
                        e_r = math.exp(mu * s_r)
                        j_0 += jd
                        j_end += jd * e_r
                        curv += abs(mu * mu * jd) * larger(1.0, e_r)
                    RP[z] += larger(j_0 - j_end, 0.0) + curv * s_r * s_r / 8.0
                rescan = not quiet[g]
            for e in range(n_spiked):
                if spiked[e] >= 0:
                    rs_e[spiked[e]] = -1
            if not restart:
                break
            restarts += 1
            counts[10] += 1
        ip = ip_end
        # the step's events, in time order, to the sample's log (they fit: see ``cap``): a spike's state just
        # before it, or an input's value, in its row of sp_x
        for e in range(n_ev):
            k = counts[0]
            log_t[k] = ev_t[e]
            log_i[k, 0] = ev_i[e, 0]
            log_i[k, 1] = ev_i[e, 1]
            log_i[k, 2] = ev_i[e, 2]
            if ev_i[e, 2] == KIND_INPUT:
                sp_x[k, 0] = ev_v[e]
            else:
                for i in range(dmax):
                    sp_x[k, i] = step_x[ev_i[e, 3], i]
                j = ev_i[e, 1]
                if RO[2] == 2 and ev_i[e, 0] == RO[0] and first[j] < 0:
                    first[j] = k
                    y[j] = ev_t[e]
            counts[0] = k + 1
        for i in range(ztot):  # a copy, not a swap of the names: rebound arrays are reference-counted in every loop
            Z[i] = Zend[i]
        sample_readout(GI, RO, ws, Z, n, y, first, True)
    for i in range(ztot):
        if not math.isfinite(Z[i]):
            return ERR_NONFINITE
    return OK


@reduce_jit
def dot(a, a0, b, b0, n):
    """sum(a[a0 + m] * b[b0 + m] for m < n), in float64. Offsets instead of views (each view of an array is
    reference-counted, and this runs per spike and connection); unsigned, so the loop vectorises."""
    acc = 0.0
    ua = np.uint64(a0)
    ub = np.uint64(b0)
    for m in range(np.uint64(n)):
        acc += np.float64(a[ua + m]) * b[ub + m]
    return acc


@leaf
def modal_transpose_apply(g, s, MU, PI, d, lam, out):
    """out = P(s)^T lam (s may be negative: the inverse flow over |s|)."""
    for i in range(d):
        out[i] = 0.0
    for k in range(d):
        e = math.exp(MU[g, k] * s)
        for i in range(d):
            acc = 0.0
            for q in range(d):
                acc += PI[g, k, q, i] * lam[q]
            out[i] += e * acc


@jit
def backward_fast(GI, CI, OC, PR, W, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events, sp_x, ztot,
                  first, MU, PI, PIB, PB, PT, GW, PG, counts, MF):
    """backward() for the event-accumulating engine. lam ([variable, neuron] per population) holds each
    neuron's adjoint as its end-of-step equivalent: lambda(t) = P(t1 - t)^T lam after its last jump so far."""
    dmax = sp_x.shape[1]
    lam = np.zeros(ztot, W.dtype)
    lam_next = np.zeros(ztot, W.dtype)
    col = np.empty(dmax, W.dtype)
    col2 = np.empty(dmax, W.dtype)
    lam_j = np.empty(dmax, W.dtype)
    lam_plus = np.empty(dmax, W.dtype)
    lam_minus = np.empty(dmax, W.dtype)
    diff = np.empty(dmax, W.dtype)
    tmp = np.empty(dmax, np.float64)
    Pdt = step_flow(GI, dt, MU, PI, PIB, dmax)[0]  # the adjoint needs P(dt) only
    return backward_fast_steps(GI, CI, OC, PR, W, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events,
                               sp_x, ztot, first, MU, PI, PB, PT, GW, PG, counts, lam, lam_next, col, col2, lam_j,
                               lam_plus, lam_minus, diff, tmp, Pdt, MF)


@flat_jit
def backward_fast_steps(GI, CI, OC, PR, W, dt, n_steps, min_gdot, RO, ws, dLdy, SDT, log_t, log_i, n_events, sp_x,
                        ztot, first, MU, PI, PB, PT, GW, PG, counts, lam, lam_next, col, col2, lam_j, lam_plus,
                        lam_minus, diff, tmp, Pdt, MF):
    """backward_fast's steps, in work arrays it allocated: compiled without numba's runtime (no allocation
    here), so the views and inlined model functions of the per-event loop cost no reference counting."""
    thrdot, spikeadj, fixedadj = MF[MF_THRDOT], MF[MF_SPIKEADJ], MF[MF_FIXEDADJ]
    e = n_events - 1
    for n in range(n_steps - 1, -1, -1):
        t0 = n * dt
        t1 = (n + 1) * dt
        readout_adjoint(GI, RO, ws, dLdy, first, n, lam, True)
        while e >= 0 and (n == 0 or log_t[e] > t0):
            g = log_i[e, 0]
            j = log_i[e, 1]
            kind = log_i[e, 2]
            s = t1 - log_t[e]
            v = sp_x[e, 0] if kind == KIND_INPUT else 1.0  # a graded input's value multiplies its weights
            S = 0.0
            for r in range(GI[g, OUT_START], GI[g, OUT_START] + GI[g, OUT_COUNT]):
                c = OC[r]
                post = CI[c, POST]
                d = GI[post, DIM]
                npost = CI[c, NPOST]
                row = CI[c, WOFF] + j * npost
                z0 = GI[post, ZOFF]
                for i in range(d):  # P(s) beta_c and P(s) tau_c, computed here: a call per event that takes
                    col[i] = 0.0    # arrays costs atomic reference counting
                    col2[i] = 0.0
                for k in range(d):
                    ek = math.exp(MU[post, k] * s)
                    for i in range(d):
                        col[i] += ek * PB[c, k, i] * v
                        col2[i] += ek * PT[c, k, i]
                # unsigned indices: no negative-index test, so the loop vectorises without views (each view is
                # reference-counted, and this runs per event and connection)
                urow = np.uint64(row)
                un = np.uint64(npost)
                if d == 2 and col[0] != 0.0 and col[1] != 0.0:
                    # both rows in one pass (each weight read and written once), in the two passes' order of
                    # additions, so the sums are the same to the bit
                    ul = np.uint64(z0)
                    c0 = col[0]
                    c1 = col[1]
                    for m in range(un):
                        GW[urow + m] = (GW[urow + m] + lam[ul + m] * c0) + lam[ul + un + m] * c1
                else:
                    for i in range(d):
                        ul = np.uint64(z0 + i * npost)
                        ci = col[i]
                        if ci != 0.0:
                            for m in range(un):
                                GW[urow + m] += lam[ul + m] * ci
                for i in range(d):
                    if kind != KIND_INPUT and col2[i] != 0.0:
                        S += dot(W, row, lam, z0 + i * npost, npost) * col2[i]
            if kind != KIND_INPUT:
                d = GI[g, DIM]
                p = params_of(GI, PR, g, j)
                nt = GI[g, NTRAIN]
                pg = PG[GI[g, PGOFF] + j * nt:GI[g, PGOFF] + (j + 1) * nt]
                x_minus = sp_x[e, :d]
                gather(GI, lam, g, j, lam_j)
                modal_transpose_apply(g, s, MU, PI, d, lam_j, lam_plus)
                if kind == KIND_CROSSING:
                    gdot = thrdot(g, x_minus, p)
                    if gdot < min_gdot:
                        counts[1] += 1
                        gdot = min_gdot
                    dldt = SDT[state_index(GI, g, j, 0, True)]
                    dldt += dLdy[j] if (RO[2] == 2 and g == RO[0] and first[j] == e) else 0.0
                    spikeadj(g, x_minus, p, lam_plus[:d], S, dldt, gdot, lam_minus, pg)
                else:
                    fixedadj(g, x_minus, p, lam_plus[:d], lam_minus, pg)
                for i in range(d):
                    diff[i] = lam_minus[i] - lam_plus[i]
                modal_transpose_apply(g, -s, MU, PI, d, diff, tmp)
                for i in range(d):
                    lam[GI[g, ZOFF] + i * GI[g, SIZE] + j] += tmp[i]
            e -= 1
        for g in range(GI.shape[0]):  # back to the start of the step: lam <- P(dt)^T lam
            if GI[g, IS_INPUT] == 1:
                continue
            d = GI[g, DIM]
            nn = GI[g, SIZE]
            z0 = GI[g, ZOFF]
            for i in range(d):
                out = lam_next[z0 + i * nn:z0 + (i + 1) * nn]
                for m in range(nn):
                    out[m] = 0.0
                for q in range(d):
                    pq = Pdt[g, q, i]
                    if pq == 0.0:
                        continue
                    src = lam[z0 + q * nn:z0 + (q + 1) * nn]
                    for m in range(nn):
                        out[m] += pq * src[m]
        for i in range(ztot):  # a copy, not a swap of the names: rebound arrays are reference-counted in every loop
            lam[i] = lam_next[i]
    return OK
