/* buckbi_mlp: forward pass and analytic Jacobian of a feed-forward network (see ifspec.ifs).
   Numerics follow buckbi's exported subcircuit and PyTorch: float64 throughout, sigmoid as
   0.5 + 0.5 tanh(x/2), softplus with PyTorch's threshold. */

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { OP_AFFINE = 1, OP_ACT = 2 };
enum { RELU = 1, SIGMOID, TANH, SILU, HARDTANH, HARDSIGMOID, LEAKY_RELU, ELU, SOFTPLUS };

typedef struct {
    int kind;            /* OP_AFFINE or OP_ACT */
    int n_in, n_out;     /* widths */
    const double *w, *b; /* affine: into the model's copy of prog */
    int act;             /* activation kind */
    double p1, p2;       /* activation parameters */
} Step;

typedef struct {
    int n_steps, n_in, n_out, width_max, ok;
    Step *steps;
    double *prog;        /* private copy of the program */
    double *vals;        /* values after each step: (n_steps + 1) x width_max */
    double *g, *g2;      /* reverse-mode work vectors */
    double *x_last, *y, *jac; /* last inputs, outputs, d out / d in (n_out x n_in) */
    int have_last;
} Net;

static double act_value(const Step *s, double x)
{
    double t;
    switch (s->act) {
    case RELU: return x > 0.0 ? x : 0.0;
    case SIGMOID: return 0.5 + 0.5 * tanh(0.5 * x);
    case TANH: return tanh(x);
    case SILU: return x * (0.5 + 0.5 * tanh(0.5 * x));
    case HARDTANH: return x < s->p1 ? s->p1 : (x > s->p2 ? s->p2 : x);
    case HARDSIGMOID: t = x + 3.0; t = t < 0.0 ? 0.0 : (t > 6.0 ? 6.0 : t); return t / 6.0;
    case LEAKY_RELU: return x > 0.0 ? x : s->p1 * x;
    case ELU: return x > 0.0 ? x : s->p1 * (exp(x) - 1.0);
    case SOFTPLUS:
        t = s->p1 * x;
        if (t > s->p2) return x;
        return ((t > 0.0 ? t : 0.0) + log(1.0 + exp(-fabs(t)))) / s->p1;
    }
    return NAN;
}

static double act_slope(const Step *s, double x)
{
    double sg, t;
    switch (s->act) {
    case RELU: return x > 0.0 ? 1.0 : 0.0;
    case SIGMOID: sg = 0.5 + 0.5 * tanh(0.5 * x); return sg * (1.0 - sg);
    case TANH: t = tanh(x); return 1.0 - t * t;
    case SILU: sg = 0.5 + 0.5 * tanh(0.5 * x); return sg + x * sg * (1.0 - sg);
    case HARDTANH: return (x > s->p1 && x < s->p2) ? 1.0 : 0.0;
    case HARDSIGMOID: return (x > -3.0 && x < 3.0) ? 1.0 / 6.0 : 0.0;
    case LEAKY_RELU: return x > 0.0 ? 1.0 : s->p1;
    case ELU: return x > 0.0 ? 1.0 : s->p1 * exp(x);
    case SOFTPLUS:
        t = s->p1 * x;
        return t > s->p2 ? 1.0 : 0.5 + 0.5 * tanh(0.5 * t);
    }
    return NAN;
}

static void net_free(Net *n)
{
    if (!n) return;
    free(n->steps); free(n->prog); free(n->vals); free(n->g); free(n->g2);
    free(n->x_last); free(n->y); free(n->jac);
    free(n);
}

/* Parse the program; 0 and a message on any inconsistency. */
static int net_parse(Net *n, const double *p, int len, int n_in, int n_out)
{
    int i = 0, width = n_in, count = 0;
    n->prog = (double *) malloc((size_t) len * sizeof(double));
    memcpy(n->prog, p, (size_t) len * sizeof(double));
    n->steps = (Step *) calloc((size_t) len, sizeof(Step));
    n->width_max = n_in;
    while (i < len) {
        Step *s = &n->steps[count];
        int op = (int) n->prog[i];
        if (op == OP_AFFINE && i + 3 <= len) {
            s->kind = OP_AFFINE;
            s->n_in = (int) n->prog[i + 1];
            s->n_out = (int) n->prog[i + 2];
            if (s->n_in != width || s->n_out < 1 ||
                i + 3 + (long) s->n_out * (s->n_in + 1) > len) {
                cm_message_printf("buckbi_mlp: affine step %d does not fit (width %d, program length %d)",
                                  count + 1, width, len);
                return 0;
            }
            s->w = n->prog + i + 3;
            s->b = s->w + (long) s->n_out * s->n_in;
            i += 3 + s->n_out * (s->n_in + 1);
            width = s->n_out;
        } else if (op == OP_ACT && i + 4 <= len) {
            s->kind = OP_ACT;
            s->act = (int) n->prog[i + 1];
            s->p1 = n->prog[i + 2];
            s->p2 = n->prog[i + 3];
            s->n_in = s->n_out = width;
            if (s->act < RELU || s->act > SOFTPLUS) {
                cm_message_printf("buckbi_mlp: unknown activation %d in step %d", s->act, count + 1);
                return 0;
            }
            i += 4;
        } else {
            cm_message_printf("buckbi_mlp: bad program at element %d", i);
            return 0;
        }
        if (width > n->width_max) n->width_max = width;
        count++;
    }
    if (width != n_out) {
        cm_message_printf("buckbi_mlp: the program ends with %d outputs, the instance has %d", width, n_out);
        return 0;
    }
    n->n_steps = count;
    n->n_in = n_in;
    n->n_out = n_out;
    n->vals = (double *) calloc((size_t) (count + 1) * n->width_max, sizeof(double));
    n->g = (double *) calloc((size_t) n->width_max, sizeof(double));
    n->g2 = (double *) calloc((size_t) n->width_max, sizeof(double));
    n->x_last = (double *) calloc((size_t) n_in, sizeof(double));
    n->y = (double *) calloc((size_t) n_out, sizeof(double));
    n->jac = (double *) calloc((size_t) n_out * n_in, sizeof(double));
    return 1;
}

/* Forward pass from n->x_last, then one reverse pass per output for the Jacobian. */
static void net_eval(Net *n)
{
    int k, j, i, wm = n->width_max;
    memcpy(n->vals, n->x_last, (size_t) n->n_in * sizeof(double));
    for (k = 0; k < n->n_steps; k++) {
        const Step *s = &n->steps[k];
        const double *a = n->vals + (size_t) k * wm;
        double *z = n->vals + (size_t) (k + 1) * wm;
        if (s->kind == OP_AFFINE) {
            for (j = 0; j < s->n_out; j++) {
                const double *row = s->w + (size_t) j * s->n_in;
                double acc = 0.0;
                for (i = 0; i < s->n_in; i++)
                    acc += row[i] * a[i];
                z[j] = acc + s->b[j];
            }
        } else {
            for (j = 0; j < s->n_out; j++)
                z[j] = act_value(s, a[j]);
        }
    }
    memcpy(n->y, n->vals + (size_t) n->n_steps * wm, (size_t) n->n_out * sizeof(double));
    for (int o = 0; o < n->n_out; o++) {
        int width = n->n_out;
        for (j = 0; j < width; j++)
            n->g[j] = (j == o) ? 1.0 : 0.0;
        for (k = n->n_steps - 1; k >= 0; k--) {
            const Step *s = &n->steps[k];
            const double *a = n->vals + (size_t) k * wm;
            if (s->kind == OP_AFFINE) {
                for (i = 0; i < s->n_in; i++)
                    n->g2[i] = 0.0;
                for (j = 0; j < s->n_out; j++) {
                    const double *row = s->w + (size_t) j * s->n_in;
                    double gj = n->g[j];
                    if (gj != 0.0)
                        for (i = 0; i < s->n_in; i++)
                            n->g2[i] += row[i] * gj;
                }
                memcpy(n->g, n->g2, (size_t) s->n_in * sizeof(double));
            } else {
                for (j = 0; j < s->n_out; j++)
                    n->g[j] *= act_slope(s, a[j]);
            }
        }
        memcpy(n->jac + (size_t) o * n->n_in, n->g, (size_t) n->n_in * sizeof(double));
    }
}

static void cm_buckbi_mlp_callback(ARGS, Mif_Callback_Reason_t reason)
{
    if (reason == MIF_CB_DESTROY) {
        net_free((Net *) STATIC_VAR(net));
        STATIC_VAR(net) = NULL;
    }
}

void cm_buckbi_mlp(ARGS)
{
    Net *n;
    int i, o, n_in = PORT_SIZE(in), n_out = PORT_SIZE(out), same = 1;

    if (INIT == 1) {
        n = (Net *) calloc(1, sizeof(Net));
        STATIC_VAR(net) = n;
        CALLBACK = cm_buckbi_mlp_callback;
        {
            int len = PARAM_SIZE(prog);
            double *p = (double *) malloc((size_t) len * sizeof(double));
            for (i = 0; i < len; i++)
                p[i] = PARAM(prog[i]);
            n->ok = net_parse(n, p, len, n_in, n_out);
            free(p);
        }
    }
    n = (Net *) STATIC_VAR(net);
    if (!n->ok) {
        for (o = 0; o < n_out; o++)
            OUTPUT(out[o]) = NAN;
        return;
    }
    for (i = 0; i < n_in; i++) {
        double x = INPUT(in[i]);
        if (!n->have_last || x != n->x_last[i]) {
            same = 0;
            n->x_last[i] = x;
        }
    }
    if (!same) {
        net_eval(n);
        n->have_last = 1;
    }
    for (o = 0; o < n_out; o++) {
        if (ANALYSIS == AC) {  /* small signal: the Jacobian at the operating point, as the subcircuit's */
            Complex_t gain;
            gain.imag = 0.0;
            for (i = 0; i < n_in; i++) {
                gain.real = n->jac[(size_t) o * n_in + i];
                AC_GAIN(out[o], in[i]) = gain;
            }
            continue;
        }
        OUTPUT(out[o]) = n->y[o];
        for (i = 0; i < n_in; i++)
            PARTIAL(out[o], in[i]) = n->jac[(size_t) o * n_in + i];
    }
}
