# Labels and environment of the discovered test cases (CMakeLists.txt says why they are set here);
# ctest reads this after the lists of discovered tests.
set(groups diloco_plain_tests diloco_hosts_tests diloco_faults_tests diloco_faults_hosts_tests
           diloco_mpi5_tests diloco_peers_tests)
foreach(group ${groups})
  if(${group})
    # Two ranks' worth of threads per test under ctest -j2; OpenBLAS single-threaded inside.
    set_tests_properties(${${group}} PROPERTIES
                         ENVIRONMENT "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1")
  endif()
endforeach()
if(diloco_hosts_tests)
  set_tests_properties(${diloco_hosts_tests} PROPERTIES LABELS hosts)
endif()
if(diloco_faults_tests)
  set_tests_properties(${diloco_faults_tests} PROPERTIES LABELS faults)
endif()
if(diloco_faults_hosts_tests)
  set_tests_properties(${diloco_faults_hosts_tests} PROPERTIES LABELS "faults;hosts")
endif()
if(diloco_mpi5_tests)
  set_tests_properties(${diloco_mpi5_tests} PROPERTIES LABELS mpi5)
endif()
