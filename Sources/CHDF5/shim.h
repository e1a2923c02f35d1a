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

/// Turns off HDF5's printing of its error stack; failures still return negative values.
static inline void ssm_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#endif
