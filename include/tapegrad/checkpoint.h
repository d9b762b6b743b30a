/*
 * tapegrad/checkpoint.h - save and load named parameters as safetensors files.
 *
 * The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON
 *   {"name": {"dtype": "F32"|"F64", "shape": [..], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "value", ...}}
 * (padded with spaces to a multiple of 8), then the tensors' raw little-endian
 * bytes, offsets relative to the start of that data section. PyTorch's
 * `safetensors.torch.load_file` reads what tg_checkpoint_save writes and the
 * other way round, for F32 and F64 tensors. docs/checkpoints.md has the details.
 *
 * Checksums: save stores zlib's CRC-32 of each tensor's bytes in the metadata
 * as "crc32:NAME" (8 hex digits); load and read verify each one present and
 * fail with TG_ERR_FORMAT naming the tensor on a mismatch (files without them
 * load as before). Those keys are not metadata of the map: read leaves them
 * out, save ignores a map's own keys that start with "crc32:".
 * cJSON (the header's JSON) allocates through tg_malloc/tg_free: the first
 * checkpoint call installs them with cJSON_InitHooks, which is process-wide.
 */
#ifndef TAPEGRAD_CHECKPOINT_H
#define TAPEGRAD_CHECKPOINT_H

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes every entry of `params` (in its order) and its metadata to `path`.
 * The file is written to "path.tmp-XXXXXX" in the same directory, flushed and
 * fsync'ed, then renamed over `path` and the directory fsync'ed: an interrupted
 * save leaves the previous file at `path` intact (and at worst a stray temporary
 * file: see tg_checkpoint_remove_temps). The new file takes the mode of the file it replaces, else
 * 0644. When `path` is a symbolic link (or a chain of them), the file it leads to is
 * replaced that way and the link is kept. Errors: TG_ERR_NULL, TG_ERR_VALUE (a name,
 * metadata key or value that is not well-formed UTF-8; nothing is written),
 * TG_ERR_IO (with the path and the system's reason; the temporary file is removed;
 * also a loop of links), TG_ERR_NOMEM.
 */
enum tg_status tg_checkpoint_save(const struct tg_params *params, const char *path);

/*
 * Removes the temporary files that saves to `path` interrupted by a crash or a
 * kill left behind ("path.tmp-XXXXXX", six letters or digits, next to the file
 * that a symbolic link `path` leads to; nothing else is touched) and stores how
 * many in *removed (may be NULL). A save that is killed cannot clean up after
 * itself, so call this at start-up, when no other process or thread is saving to
 * the same path (it would remove that save's temporary file, and that save
 * would then fail with TG_ERR_IO; `path` itself is never harmed). Errors:
 * TG_ERR_NULL, TG_ERR_IO (the directory cannot be read, or a file cannot be
 * removed: the others are still removed).
 */
enum tg_status tg_checkpoint_remove_temps(const char *path, size_t *removed);

/*
 * Loads `path` into the tensors of `params` (borrowed), which must match the file
 * exactly: the same names, and for each the same shape and dtype. Every mismatch
 * (missing names, unexpected names, shape and dtype differences) is listed in the
 * message of TG_ERR_MISMATCH. Nothing is modified unless the whole file is valid
 * and matches. Metadata in the file is ignored (tg_checkpoint_read returns it).
 * Errors: TG_ERR_NULL, TG_ERR_IO, TG_ERR_FORMAT (a corrupt or truncated file, or a
 * header with bytes that are not UTF-8, a "\u0000" escape or an empty metadata key: the
 * message says what is wrong), TG_ERR_MISMATCH, TG_ERR_NOMEM.
 */
enum tg_status tg_checkpoint_load(struct tg_params *params, const char *path);

/*
 * Reads `path` into a new map of owned leaf tensors (in the file's data order)
 * with the file's metadata, without a model. NULL with the error set (as for
 * tg_checkpoint_load, without TG_ERR_MISMATCH). Free it with tg_params_free.
 */
struct tg_params *tg_checkpoint_read(const char *path);

/*
 * Like tg_checkpoint_read, from the `size` bytes at `buf` (borrowed, only read;
 * copied, so it may be freed right after the call). Messages name the file
 * "<buffer>". NULL with TG_ERR_NULL (buf NULL with size > 0), TG_ERR_FORMAT,
 * TG_ERR_NOMEM. Used to parse checkpoints received over a network or embedded
 * in another file, and by the fuzzer.
 */
struct tg_params *tg_checkpoint_read_buffer(const void *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
