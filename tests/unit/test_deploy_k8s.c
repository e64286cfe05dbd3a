/* test_deploy_k8s.c - deploy/k8s/ kept in step with the code: every worker has a workload,
 * probes on the port SY_HTTP_ADDR names, a termination grace that covers SY_SHUTDOWN_GRACE and
 * the preStop sleep, secrets only as files of mounted Secrets (or Secret references), settings
 * the workers know, a KEDA ScaledObject on sy.<worker> for each AMQP worker, and a
 * kustomization that lists every manifest and every settings file. One object per file: the
 * project's YAML reader takes one document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sy/config.h"
#include "sy/doc.h"
#include "sy/topology.h"

#define MAX_OBJS 128
#define NS       "switchyard"

struct obj {
    char file[256]; /* relative to deploy/k8s */
    struct sy_doc *doc;
    const struct sy_node *root;
    const char *kind, *name;
};

static struct obj objs[MAX_OBJS];
static size_t nobjs;

/* A settings row as its table in the C source writes it: {"SY_X", SY_CONF_<TYPE>, ... */
struct row {
    char name[64], type[16];
};

#define MAX_ROWS 64

/* Reads the rows of every .c file of dir (relative to the source tree) into rows. */
static size_t read_rows(const char *dir, struct row *rows, size_t max);

static const char *source_dir(void)
{
    const char *d = getenv("SY_SOURCE_DIR");
    return d && *d ? d : ".";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *str_at(const struct sy_node *n, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        n = sy_node_get(n, k);
    return sy_node_str(n);
}

static const struct sy_node *node_at(const struct sy_node *n, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        n = sy_node_get(n, k);
    return n;
}

static bool eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's entries ending in suffix, sorted; returns the count. */
static size_t list_dir(const char *dir, const char *suffix, char **names, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && ends_with(e->d_name, suffix) && n < max)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    return n;
}

static void load_dir(const char *sub)
{
    char dir[1024], *names[MAX_OBJS];
    snprintf(dir, sizeof dir, "%s/deploy/k8s%s%s", source_dir(), *sub ? "/" : "", sub);
    size_t n = list_dir(dir, ".yaml", names, MAX_OBJS);
    for (size_t i = 0; i < n; i++) {
        char path[1400], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_true(nobjs < MAX_OBJS);
        struct obj *o = &objs[nobjs++];
        snprintf(o->file, sizeof o->file, "%s%s%s", sub, *sub ? "/" : "", names[i]);
        o->doc = sy_doc_load_file(path, err, sizeof err);
        if (!o->doc)
            fail_msg("%s", err);
        o->root = sy_doc_root(o->doc);
        o->kind = str_at(o->root, "kind");
        o->name = str_at(o->root, "metadata.name");
        if (!o->name)
            o->name = str_at(o->root, "metadata.generateName");
        free(names[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    load_dir("");
    load_dir("secrets");
    load_dir("jobs");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nobjs; i++)
        sy_doc_destroy(objs[i].doc);
    nobjs = 0;
    return 0;
}

static bool top_level(const struct obj *o)
{
    return strchr(o->file, '/') == NULL;
}

static const struct obj *find(const char *kind, const char *name)
{
    for (size_t i = 0; i < nobjs; i++)
        if (objs[i].kind && objs[i].name && strcmp(objs[i].kind, kind) == 0 &&
            strcmp(objs[i].name, name) == 0)
            return &objs[i];
    return NULL;
}

static const struct obj *find_workload(const char *name)
{
    const struct obj *o = find("Deployment", name);
    return o ? o : find("StatefulSet", name);
}

/* The worker directories that build sy-<name>, sorted. */
static size_t worker_names(char **names, size_t max)
{
    char dir[1024], *all[64];
    snprintf(dir, sizeof dir, "%s/workers", source_dir());
    size_t n = list_dir(dir, "", all, 64), k = 0;
    for (size_t i = 0; i < n; i++) {
        char cm[1400];
        struct stat st;
        snprintf(cm, sizeof cm, "%s/%s/CMakeLists.txt", dir, all[i]);
        if (stat(cm, &st) == 0 && k < max)
            names[k++] = all[i];
        else
            free(all[i]);
    }
    return k;
}

static size_t read_rows(const char *dir, struct row *rows, size_t max)
{
    char path[1024], *names[64];
    size_t n, k = 0;
    snprintf(path, sizeof path, "%s/%s", source_dir(), dir);
    n = list_dir(path, ".c", names, 64);
    for (size_t i = 0; i < n; i++) {
        char file[1400], *text = NULL;
        snprintf(file, sizeof file, "%s/%s", path, names[i]);
        assert_int_equal(sy_read_file(file, 4u << 20, &text, NULL), 0);
        for (const char *p = strstr(text, "{\"SY_"); p; p = strstr(p + 1, "{\"SY_")) {
            struct row r;
            int used = 0;
            if (sscanf(p, "{\"%63[A-Z0-9_]\", SY_CONF_%15[A-Z]%n", r.name, r.type, &used) == 2 &&
                used > 0 && k < max)
                rows[k++] = r;
        }
        free(text);
        free(names[i]);
    }
    return k;
}

/* The type of setting key of the worker (its own rows, then the runtime's); NULL if neither
 * has it. */
static const char *row_type(const char *worker, const char *key)
{
    struct row rows[MAX_ROWS];
    static char type[16];
    char dir[256];
    size_t n = read_rows("common/src", rows, MAX_ROWS);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, key) == 0) {
            snprintf(type, sizeof type, "%s", rows[i].type);
            return type;
        }
    if (!worker)
        return NULL;
    snprintf(dir, sizeof dir, "workers/%s", worker);
    n = read_rows(dir, rows, MAX_ROWS);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, key) == 0) {
            snprintf(type, sizeof type, "%s", rows[i].type);
            return type;
        }
    return NULL;
}

/* Whether the runtime reads key from key_FILE too (SECRET and URL rows). */
static bool file_capable(const char *worker, const char *key)
{
    const char *t = row_type(worker, key);
    return eq(t, "SECRET") || eq(t, "URL");
}

static bool looks_secret(const char *worker, const char *name)
{
    static const char *const words[] = {"PASSWORD", "SECRET", "TOKEN", "APIKEY", NULL};
    if (file_capable(worker, name))
        return true;
    for (size_t i = 0; words[i]; i++)
        if (strstr(name, words[i]))
            return true;
    return false;
}

/* "scheme://user:password@host": a credential written into a URL. */
static bool url_with_password(const char *v)
{
    const char *p = strstr(v, "://");
    if (!p)
        return false;
    p += 3;
    const char *at = strchr(p, '@'), *slash = strchr(p, '/');
    if (!at || (slash && slash < at))
        return false;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    return colon && colon + 1 < at;
}

/* Whether the Secret template secrets/<name>.yaml has key. */
static bool secret_has_key(const char *secret, const char *key)
{
    const struct obj *s = find("Secret", secret);
    if (!s)
        return false;
    return sy_node_get(sy_node_get(s->root, "stringData"), key) ||
           sy_node_get(sy_node_get(s->root, "data"), key);
}

static char *config_text; /* every deploy/config/ YAML file, concatenated */

static const char *configs(void)
{
    if (config_text)
        return config_text;
    char dir[1024], *names[64];
    snprintf(dir, sizeof dir, "%s/deploy/config", source_dir());
    size_t n = list_dir(dir, ".yaml", names, 64), len = 0;
    config_text = calloc(1, 1);
    for (size_t i = 0; i < n; i++) {
        char path[1400], *buf = NULL;
        size_t blen = 0;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_int_equal(sy_read_file(path, 1u << 20, &buf, &blen), 0);
        config_text = realloc(config_text, len + blen + 1);
        memcpy(config_text + len, buf, blen + 1);
        len += blen;
        free(buf);
        free(names[i]);
    }
    return config_text;
}

/* A variable a deploy/config file names (password_env: X, ${X}): the worker reads it through
 * the file, not through a settings row. */
static bool named_by_config(const char *name)
{
    const char *t = configs();
    size_t n = strlen(name);
    for (const char *p = strstr(t, name); p; p = strstr(p + 1, name)) {
        char before = p > t ? p[-1] : ' ', after = p[n];
        if (!(isalnum((unsigned char)before) || before == '_') &&
            !(isalnum((unsigned char)after) || after == '_'))
            return true;
    }
    return false;
}

static const struct sy_node *pod_spec(const struct obj *o)
{
    return node_at(o->root, "spec.template.spec");
}

static const struct sy_node *container(const struct obj *o, const char *name)
{
    const struct sy_node *cs = sy_node_get(pod_spec(o), "containers");
    for (size_t i = 0; i < sy_node_len(cs); i++) {
        const struct sy_node *c = sy_node_at(cs, i, NULL);
        if (!name || eq(str_at(c, "name"), name))
            return c;
    }
    return NULL;
}

static const struct sy_node *env_node(const struct sy_node *c, const char *name)
{
    const struct sy_node *env = sy_node_get(c, "env");
    for (size_t i = 0; i < sy_node_len(env); i++) {
        const struct sy_node *e = sy_node_at(env, i, NULL);
        if (eq(str_at(e, "name"), name))
            return e;
    }
    return NULL;
}

static const char *env_value(const struct sy_node *c, const char *name)
{
    return str_at(env_node(c, name), "value");
}

/* The secret a mounted volume comes from, for the mount at mount_path; NULL when it is not
 * a Secret volume. */
static const char *secret_of_mount(const struct obj *o, const struct sy_node *c,
                                   const char *mount_path)
{
    const struct sy_node *mounts = sy_node_get(c, "volumeMounts");
    const struct sy_node *vols = sy_node_get(pod_spec(o), "volumes");
    for (size_t i = 0; i < sy_node_len(mounts); i++) {
        const struct sy_node *m = sy_node_at(mounts, i, NULL);
        if (!eq(str_at(m, "mountPath"), mount_path))
            continue;
        for (size_t j = 0; j < sy_node_len(vols); j++) {
            const struct sy_node *v = sy_node_at(vols, j, NULL);
            if (eq(str_at(v, "name"), str_at(m, "name")))
                return str_at(v, "secret.secretName");
        }
    }
    return NULL;
}

static void test_one_object_per_file_all_in_the_kustomization(void **state)
{
    (void)state;
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/deploy/kustomization.yaml", source_dir());
    struct sy_doc *k = sy_doc_load_file(path, err, sizeof err);
    if (!k)
        fail_msg("%s", err);
    const struct sy_node *res = sy_node_get(sy_doc_root(k), "resources");
    size_t listed = 0;
    assert_true(nobjs > 0);
    for (size_t i = 0; i < nobjs; i++) {
        const struct obj *o = &objs[i];
        if (!o->kind || !o->name || !str_at(o->root, "apiVersion"))
            fail_msg("deploy/k8s/%s: not one Kubernetes object (apiVersion, kind, metadata.name)",
                     o->file);
        if (strcmp(o->kind, "Namespace") != 0 &&
            strcmp(str_at(o->root, "metadata.namespace") ? str_at(o->root, "metadata.namespace")
                                                         : "",
                   NS) != 0)
            fail_msg("deploy/k8s/%s: metadata.namespace must be %s (for kubectl apply -f)", o->file,
                     NS);
        bool found = false;
        for (size_t j = 0; j < sy_node_len(res); j++) {
            const char *r = sy_node_str(sy_node_at(res, j, NULL));
            if (r && strncmp(r, "k8s/", 4) == 0 && strcmp(r + 4, o->file) == 0)
                found = true;
        }
        /* Secrets are templates and Jobs are created per release: never in the kustomization. */
        if (top_level(o) && !found)
            fail_msg("deploy/k8s/%s is not among deploy/kustomization.yaml's resources", o->file);
        if (!top_level(o) && found)
            fail_msg("deploy/k8s/%s must not be applied with the fleet", o->file);
        if (strcmp(o->kind, "Secret") == 0 && top_level(o))
            fail_msg("deploy/k8s/%s: Secret templates belong in deploy/k8s/secrets/", o->file);
        listed += found;
    }
    if (listed != sy_node_len(res))
        fail_msg("deploy/kustomization.yaml lists %zu resources, deploy/k8s/ holds %zu",
                 sy_node_len(res), listed);

    /* The ConfigMap is every settings file of deploy/config/. */
    char dir[1024], *names[64];
    snprintf(dir, sizeof dir, "%s/deploy/config", source_dir());
    size_t n = list_dir(dir, ".yaml", names, 64);
    const struct sy_node *gens = sy_node_get(sy_doc_root(k), "configMapGenerator");
    const struct sy_node *files = NULL;
    for (size_t i = 0; i < sy_node_len(gens); i++) {
        const struct sy_node *g = sy_node_at(gens, i, NULL);
        if (eq(str_at(g, "name"), "switchyard-config"))
            files = sy_node_get(g, "files");
    }
    assert_non_null(files);
    assert_int_equal(sy_node_len(files), n);
    for (size_t i = 0; i < n; i++) {
        char want[300];
        snprintf(want, sizeof want, "config/%s", names[i]);
        assert_string_equal(sy_node_str(sy_node_at(files, i, NULL)), want);
        free(names[i]);
    }
    sy_doc_destroy(k);
}

static void test_every_worker_has_a_workload_running_its_binary(void **state)
{
    (void)state;
    char *names[64];
    size_t n = worker_names(names, 64);
    assert_true(n >= 7);
    for (size_t i = 0; i < n; i++) {
        char full[128], bin[200];
        snprintf(full, sizeof full, "sy-%s", names[i]);
        snprintf(bin, sizeof bin, "/usr/local/bin/%s", full);
        const struct obj *o = find_workload(full);
        if (!o)
            fail_msg("workers/%s has no Deployment or StatefulSet %s in deploy/k8s/", names[i],
                     full);
        const struct sy_node *c = container(o, full);
        if (!c)
            fail_msg("%s: no container named %s", o->file, full);
        const char *cmd = sy_node_str(sy_node_at(sy_node_get(c, "command"), 0, NULL));
        if (!cmd || strcmp(cmd, bin) != 0)
            fail_msg("%s: the command must be %s", o->file, bin);
        free(names[i]);
    }
}

/* The port of a probe: a number, or the name of one of the container's ports. */
static long probe_port(const struct sy_node *c, const struct sy_node *probe)
{
    const struct sy_node *p = node_at(probe, "httpGet.port");
    const char *s = sy_node_str(p);
    if (!s)
        return -1;
    if (isdigit((unsigned char)s[0]))
        return strtol(s, NULL, 10);
    const struct sy_node *ports = sy_node_get(c, "ports");
    for (size_t i = 0; i < sy_node_len(ports); i++) {
        const struct sy_node *e = sy_node_at(ports, i, NULL);
        if (eq(str_at(e, "name"), s))
            return strtol(str_at(e, "containerPort"), NULL, 10);
    }
    return -1;
}

/* Seconds of the preStop hook: `sleep N` (exec) or the sleep action; 0 without one. */
static long long prestop_s(const struct obj *o, const struct sy_node *c)
{
    const struct sy_node *ps = node_at(c, "lifecycle.preStop");
    if (!ps)
        return 0;
    const char *secs = str_at(ps, "sleep.seconds");
    if (secs)
        return strtoll(secs, NULL, 10);
    const struct sy_node *cmd = node_at(ps, "exec.command");
    const char *a0 = sy_node_str(sy_node_at(cmd, 0, NULL));
    const char *a1 = sy_node_str(sy_node_at(cmd, 1, NULL));
    if (sy_node_len(cmd) == 2 && a0 && a1 && ends_with(a0, "sleep"))
        return strtoll(a1, NULL, 10);
    fail_msg("%s: a preStop hook this test cannot read (expected: sleep N)", o->file);
    return 0;
}

static void test_probes_and_grace_follow_the_settings(void **state)
{
    (void)state;
    char *names[64];
    size_t n = worker_names(names, 64);
    for (size_t i = 0; i < n; i++) {
        char full[128];
        snprintf(full, sizeof full, "sy-%s", names[i]);
        const struct obj *o = find_workload(full);
        assert_non_null(o);
        const struct sy_node *c = container(o, full);

        /* Probes on the health port, reachable from the kubelet (not loopback). */
        const char *addr = env_value(c, "SY_HTTP_ADDR");
        if (!addr || !strrchr(addr, ':'))
            fail_msg("%s: SY_HTTP_ADDR must be set to host:port", o->file);
        long port = strtol(strrchr(addr, ':') + 1, NULL, 10);
        if (port <= 0 || strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost", 9) == 0)
            fail_msg("%s: SY_HTTP_ADDR %s: a fixed port on every interface", o->file, addr);
        const struct sy_node *rp = sy_node_get(c, "readinessProbe");
        const struct sy_node *lp = sy_node_get(c, "livenessProbe");
        if (!str_at(rp, "httpGet.path") || !eq(str_at(rp, "httpGet.path"), "/readyz"))
            fail_msg("%s: readinessProbe must GET /readyz", o->file);
        if (!str_at(lp, "httpGet.path") || !eq(str_at(lp, "httpGet.path"), "/healthz"))
            fail_msg("%s: livenessProbe must GET /healthz", o->file);
        if (probe_port(c, rp) != port || probe_port(c, lp) != port)
            fail_msg("%s: the probes must use port %ld of SY_HTTP_ADDR", o->file, port);

        /* SIGTERM comes after preStop; the worker then drains for SY_SHUTDOWN_GRACE. */
        const char *grace = env_value(c, "SY_SHUTDOWN_GRACE");
        long long grace_ms = 0;
        assert_int_equal(sy_conf_parse_ms(grace ? grace : "30s", &grace_ms), 0);
        const char *tgps = str_at(pod_spec(o), "terminationGracePeriodSeconds");
        long long t = tgps ? strtoll(tgps, NULL, 10) : 30; /* Kubernetes' default */
        long long need = (grace_ms + 999) / 1000 + prestop_s(o, c);
        if (t < need)
            fail_msg("%s: terminationGracePeriodSeconds %lld < SY_SHUTDOWN_GRACE + preStop = %lld",
                     o->file, t, need);
        free(names[i]);
    }
}

/* The checks of one container's environment; worker NULL for a tool (syctl). */
static void check_env(const struct obj *o, const struct sy_node *c, const char *worker)
{
    const struct sy_node *env = sy_node_get(c, "env");
    for (size_t i = 0; i < sy_node_len(env); i++) {
        const struct sy_node *e = sy_node_at(env, i, NULL);
        const char *name = str_at(e, "name"), *value = str_at(e, "value");
        char base[128] = "";
        assert_non_null(name);
        if (ends_with(name, "_FILE"))
            snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - 5), name);

        if (*base) {
            /* NAME_FILE: read by the runtime only for SECRET and URL rows, and only worth
             * it for a file of a mounted Secret that holds the key. */
            if (!file_capable(worker, base))
                fail_msg("%s: %s: %s is no secret or URL setting, its _FILE is never read", o->file,
                         name, base);
            const char *slash = value ? strrchr(value, '/') : NULL;
            if (!slash)
                fail_msg("%s: %s must be a path", o->file, name);
            char dir[512];
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - value), value);
            const char *secret = secret_of_mount(o, c, dir);
            if (!secret)
                fail_msg("%s: %s=%s is not in a mounted Secret", o->file, name, value);
            if (!secret_has_key(secret, slash + 1))
                fail_msg("%s: %s: Secret %s (deploy/k8s/secrets/) has no key %s", o->file, name,
                         secret, slash + 1);
            if (env_node(c, base))
                fail_msg("%s: both %s and %s set (the worker refuses that)", o->file, base, name);
            continue;
        }
        const struct sy_node *skr = node_at(e, "valueFrom.secretKeyRef");
        if (skr) {
            if (!secret_has_key(str_at(skr, "name"), str_at(skr, "key")))
                fail_msg("%s: %s: Secret %s has no key %s", o->file, name, str_at(skr, "name"),
                         str_at(skr, "key"));
        } else if (looks_secret(worker, name)) {
            fail_msg("%s: %s is a secret: give it as %s_FILE (or a secretKeyRef)", o->file, name,
                     name);
        }
        if (value && url_with_password(value))
            fail_msg("%s: %s holds a password in plain text", o->file, name);
        if (worker && !row_type(worker, name) && !named_by_config(name))
            fail_msg("%s: %s is no setting of sy-%s (nor named by deploy/config/)", o->file, name,
                     worker);
    }
}

static void test_secrets_only_as_files_or_references(void **state)
{
    (void)state;
    char *names[64];
    size_t n = worker_names(names, 64);
    /* The rows are read from the C tables: make sure that still works. */
    assert_true(file_capable(NULL, "SY_AMQP_URL"));
    assert_true(file_capable("gateway", "SY_GATEWAY_JWT_SECRET"));
    assert_false(file_capable("gateway", "SY_GATEWAY_ADDR"));
    assert_true(eq(row_type(NULL, "SY_SHUTDOWN_GRACE"), "MS"));
    for (size_t i = 0; i < n; i++) {
        char full[128];
        snprintf(full, sizeof full, "sy-%s", names[i]);
        const struct obj *o = find_workload(full);
        assert_non_null(o);
        check_env(o, container(o, full), names[i]);
        free(names[i]);
    }
    for (size_t i = 0; i < nobjs; i++)
        if (strcmp(objs[i].kind, "Job") == 0)
            check_env(&objs[i], container(&objs[i], NULL), NULL);
    /* The templates hold placeholders only. */
    for (size_t i = 0; i < nobjs; i++) {
        if (strcmp(objs[i].kind, "Secret") != 0)
            continue;
        const struct sy_node *d = sy_node_get(objs[i].root, "stringData");
        if (!d || sy_node_get(objs[i].root, "data"))
            fail_msg("%s: a template gives stringData only", objs[i].file);
        for (size_t j = 0; j < sy_node_len(d); j++)
            if (!strstr(sy_node_str(sy_node_at(d, j, NULL)), "CHANGE-ME"))
                fail_msg("%s: every value of a template is a CHANGE-ME placeholder", objs[i].file);
    }
}

static void test_every_amqp_worker_scales_on_its_queue(void **state)
{
    (void)state;
    char path[1024], err[512] = "", *names[64];
    snprintf(path, sizeof path, "%s/schemas/topology.yaml", source_dir());
    struct sy_topology *t = sy_topology_load(path, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    size_t n = worker_names(names, 64), amqp = 0;
    for (size_t i = 0; i < n; i++) {
        char full[128], queue[256];
        const struct sy_topo_worker *tw = sy_topology_worker(t, names[i]);
        snprintf(full, sizeof full, "sy-%s", names[i]);
        const struct obj *so = find("ScaledObject", full);
        if (!tw) {
            if (so)
                fail_msg("%s: %s consumes no queue to scale on", so->file, full);
            free(names[i]);
            continue;
        }
        amqp++;
        assert_int_equal(sy_topo_queue_name(tw, queue, sizeof queue), 0);
        if (!so)
            fail_msg("%s consumes %s but has no ScaledObject %s", full, queue, full);
        const char *target = str_at(so->root, "spec.scaleTargetRef.name");
        if (!target || strcmp(target, full) != 0)
            fail_msg("%s: scaleTargetRef.name must be %s", so->file, full);
        const struct obj *d = find("Deployment", full);
        if (!d)
            fail_msg("%s: KEDA scales a Deployment %s", so->file, full);
        if (sy_node_get(sy_node_get(d->root, "spec"), "replicas"))
            fail_msg("%s: spec.replicas would undo KEDA's count at every apply", d->file);
        const struct sy_node *trig = node_at(so->root, "spec.triggers");
        bool ok = false;
        for (size_t j = 0; j < sy_node_len(trig); j++) {
            const struct sy_node *tr = sy_node_at(trig, j, NULL);
            if (!eq(str_at(tr, "type"), "rabbitmq"))
                continue;
            const char *q = str_at(tr, "metadata.queueName"), *mode = str_at(tr, "metadata.mode");
            const char *auth = str_at(tr, "authenticationRef.name");
            if (!q || strcmp(q, queue) != 0)
                fail_msg("%s: queueName must be %s", so->file, queue);
            if (!mode || strcmp(mode, "QueueLength") != 0 || !str_at(tr, "metadata.value"))
                fail_msg("%s: mode QueueLength with a value per replica", so->file);
            const struct obj *ta = auth ? find("TriggerAuthentication", auth) : NULL;
            if (!ta)
                fail_msg("%s: TriggerAuthentication %s missing", so->file, auth ? auth : "");
            const struct sy_node *refs = node_at(ta->root, "spec.secretTargetRef");
            assert_true(sy_node_len(refs) > 0);
            for (size_t r = 0; r < sy_node_len(refs); r++) {
                const struct sy_node *ref = sy_node_at(refs, r, NULL);
                if (!secret_has_key(str_at(ref, "name"), str_at(ref, "key")))
                    fail_msg("%s: Secret %s has no key %s", ta->file, str_at(ref, "name"),
                             str_at(ref, "key"));
            }
            ok = true;
        }
        if (!ok)
            fail_msg("%s: no rabbitmq trigger", so->file);
        free(names[i]);
    }
    assert_true(amqp >= 4);
    sy_topology_destroy(t);
}

static void test_telemetry_keeps_its_identity_and_spool(void **state)
{
    (void)state;
    const struct obj *o = find("StatefulSet", "sy-telemetry");
    assert_non_null(o);
    const struct sy_node *c = container(o, "sy-telemetry");
    const struct sy_node *id = env_node(c, "SY_TELEMETRY_CLIENT_ID");
    if (!str_at(id, "valueFrom.fieldRef.fieldPath") ||
        !eq(str_at(id, "valueFrom.fieldRef.fieldPath"), "metadata.name"))
        fail_msg("%s: SY_TELEMETRY_CLIENT_ID must be the pod name", o->file);
    const char *spool = env_value(c, "SY_TELEMETRY_SPOOL_DIR");
    assert_non_null(spool);
    const struct sy_node *mounts = sy_node_get(c, "volumeMounts");
    const struct sy_node *vct = node_at(o->root, "spec.volumeClaimTemplates");
    bool ok = false;
    for (size_t i = 0; i < sy_node_len(mounts); i++) {
        const struct sy_node *m = sy_node_at(mounts, i, NULL);
        if (!eq(str_at(m, "mountPath"), spool))
            continue;
        for (size_t j = 0; j < sy_node_len(vct); j++)
            if (strcmp(str_at(sy_node_at(vct, j, NULL), "metadata.name"), str_at(m, "name")) == 0)
                ok = true;
    }
    if (!ok)
        fail_msg("%s: SY_TELEMETRY_SPOOL_DIR must be a volume of volumeClaimTemplates", o->file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_object_per_file_all_in_the_kustomization),
        cmocka_unit_test(test_every_worker_has_a_workload_running_its_binary),
        cmocka_unit_test(test_probes_and_grace_follow_the_settings),
        cmocka_unit_test(test_secrets_only_as_files_or_references),
        cmocka_unit_test(test_every_amqp_worker_scales_on_its_queue),
        cmocka_unit_test(test_telemetry_keeps_its_identity_and_spool),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    free(config_text);
    return rc;
}
