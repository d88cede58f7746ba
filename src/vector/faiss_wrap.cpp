// faiss_wrap.cpp — see faiss_wrap.h
#include "vector/faiss_wrap.h"
