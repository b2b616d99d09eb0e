# attest.cmake — libFuzzer targets for every parser of outside bytes in
# src/attest: Intel quotes (SGX, TDX), SEV-SNP reports and their certificate tables, TCB Info and QE Identity JSON, the
# PCK certificate's SGX extension, simulation evidence, RA-TLS certificate extensions. The targets reach
# the module's private parsers, so they see src/attest/attest_int.h.
set(ATTEST_FUZZ sgx_quote tdx_quote snp_report snp_certs tcb_info qe_identity pck_ext sim_evidence ratls_ext)
foreach(t ${ATTEST_FUZZ})
  coffer_fuzz(${t} LIBS coffer_attest SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/${t})
  target_include_directories(fuzz_${t} PRIVATE ${CMAKE_SOURCE_DIR}/src/attest)
endforeach()
