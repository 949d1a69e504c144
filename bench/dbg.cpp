#include <gdcmReader.h>
#include <cstdio>
#include <filesystem>
int main(int argc, char** argv){
  gdcm::Reader r; r.SetFileName(argv[1]); r.ReadUpToTag(gdcm::Tag(0x7fe0,0x0010));
  printf("pos %zu size %zu\n", r.GetStreamCurrentPosition(), (size_t)std::filesystem::file_size(argv[1]));
}
