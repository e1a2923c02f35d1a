// The HDF5 C API. Swift cannot import its macros for ids and flags, so they are functions here.
#ifndef SSM_CHDF5_SHIM_H
#define SSM_CHDF5_SHIM_H

#include <hdf5.h>

static inline hid_t ssm_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t ssm_h5s_all(void) { return H5S_ALL; }
static inline hid_t ssm_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t ssm_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t ssm_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t ssm_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned ssm_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned ssm_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned ssm_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned ssm_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t ssm_h5e_default(void) { return H5E_DEFAULT; }

/// A file-access property list without HDF5's own file locking (close it with H5Pclose).
/// HDF5 1.10 takes an flock on every file it opens. In parallel tests, opening a just-written
/// file failed now and then with EAGAIN ("unable to lock file", 2 runs in 40; 0 in 40 without
/// the lock): some other descriptor of it still held HDF5's lock, most likely one inherited by a
/// child process (git) that another thread started while the file was open. ResultsStore never
/// changes a file in place — it writes a temporary copy and renames it, under its own lock — so
/// HDF5's lock protects nothing here.
static inline hid_t ssm_h5p_unlocked_access(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_file_locking(fapl, 0, 1);
    return fapl;
}

/// Turns off HDF5's printing of its error stack; failures still return negative values.
static inline void ssm_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#include <stdio.h>
#include <string.h>

static herr_t ssm_h5e_append(unsigned n, const H5E_error2_t *error, void *buffer) {
    char *text = (char *)buffer;
    if (n == 0 && error->desc != NULL) snprintf(text, 1024, "%s", error->desc);
    return 0;
}

/// The innermost entry of the calling thread's HDF5 error stack (where the failure was found)
/// into `text` (1024 bytes): what a failed call says beyond its negative return value.
static inline void ssm_h5_error_stack(char *text) {
    text[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, ssm_h5e_append, text);
}

#endif
