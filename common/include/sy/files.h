/* files.h - the content-addressed file store: every stored file is named by the SHA-256 of
 * its bytes (64 lower-case hex characters) under one root directory, as
 * <root>/<h[0..1]>/<h[2..3]>/<h>, so the same bytes are kept once however often they arrive.
 * Writers never leave a partial file under a final name: bytes go to a temporary file in the
 * same directory, are fsynced, then renamed into place, and the directory is fsynced. Several
 * processes may store into one root at once. */
#ifndef SY_FILES_H
#define SY_FILES_H

#include <stddef.h>
#include <stdint.h>

#define SY_FILES_HEX_LEN 64

/* Stores len bytes (data may be NULL when len is 0); on success hex_out (SY_FILES_HEX_LEN + 1
 * bytes) receives their name. A file already there is left as it is (its bytes are the same by
 * construction); two writers racing on the same bytes may each rename their copy into place,
 * which changes nothing a reader sees. 0, -SY_EINVAL (root NULL or empty, or too long for a
 * path), or -SY_EIO (with errno's text in err: full disk, permissions). The directories, the
 * root included, are created as needed (mode 0750, files 0640, whatever the umask). */
int sy_files_put(const char *root, const void *data, size_t len, char hex_out[SY_FILES_HEX_LEN + 1],
                 char *err, size_t errlen);
/* Decodes standard padded base64 and stores the bytes as sy_files_put does; on success
 * *size_out (when size_out is not NULL) gets their count. The text is decoded a chunk at a time
 * into a temporary file under <root>/.incoming/, as the name is known only at the end.
 * -SY_EDECODE for text that is not such base64 (nothing is left behind), -SY_ENOMEM, or as
 * sy_files_put. */
int sy_files_put_base64(const char *root, const char *b64, size_t b64_len,
                        char hex_out[SY_FILES_HEX_LEN + 1], size_t *size_out, char *err,
                        size_t errlen);
/* The path of the file named hex (whether or not it exists) into out. -SY_EINVAL for a name
 * that is not 64 lower-case hex characters, -SY_ETOOBIG when out is too small. */
int sy_files_path(const char *root, const char *hex, char *out, size_t outlen);
/* Reads a stored file whole (at most max bytes) into a malloc'd buffer the caller frees,
 * checking that its bytes still hash to its name; on failure *data_out is NULL. -SY_EINVAL (a
 * bad root or name), -SY_ENOTFOUND, -SY_ETOOBIG, -SY_ENOMEM, -SY_EIO, or -SY_EDECODE when the
 * content no longer matches its name (a damaged disk). */
int sy_files_get(const char *root, const char *hex, size_t max, void **data_out, size_t *len_out);

#endif
